"""The server's ReadIndex rounds (`kv.server.replica.clients.reads`): which reads a round serves,
and when the next one is asked.

Each test drives `ReadRounds` by hand: ``ask`` records the contexts Raft would be asked
for, ``answered`` plays the Ready's read state, and the clock is the test's own.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from kv.raft import ConfChange, ConfChangeType
from kv.server import errors
from kv.server.replica.clients.proposals import Proposals
from kv.server.replica.clients.reads import BUSY_LAG_SECONDS, MANY_READS, ReadRounds
from kv.server.replica.timing import Timing
from tests.raftnet import lone_leader

PACE = 0.01


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rounds(clock: Clock, asked: list[bytes], retry_after: float = 1.0) -> ReadRounds:
    return ReadRounds(
        ask=asked.append,
        contexts=itertools.count(1),
        now=clock,
        retry_after=retry_after,
        pace=PACE,
    )


async def turn() -> None:
    """Let the event loop run the callbacks scheduled so far (one probe of the loop)."""
    await asyncio.sleep(0)


async def test_a_lone_read_is_asked_for_at_once() -> None:
    asked: list[bytes] = []
    reads = rounds(Clock(), asked)
    reader = reads.join()
    assert len(asked) == 1
    reads.answered(asked[0], 7)
    assert await reader == 7


async def test_reads_arriving_during_a_round_wait_and_share_the_next_one() -> None:
    asked: list[bytes] = []
    clock = Clock()
    reads = rounds(clock, asked)
    first = reads.join()
    second, third = reads.join(), reads.join()
    assert len(asked) == 1  # the round in flight was asked before they arrived
    reads.answered(asked[0], 5)
    assert await first == 5
    clock.now += PACE
    reads.done(first)
    assert len(asked) == 2  # one round for both
    reads.answered(asked[1], 6)
    assert (await second, await third) == (6, 6)


async def test_the_next_round_waits_until_the_last_rounds_reads_are_served() -> None:
    asked: list[bytes] = []
    clock = Clock()
    reads = rounds(clock, asked)
    first = reads.join()
    second = reads.join()
    reads.answered(asked[0], 5)
    clock.now += PACE
    assert len(asked) == 1  # `first` is released but not served yet
    reads.done(first)
    assert len(asked) == 2
    reads.answered(asked[1], 5)
    assert await second == 5


async def test_an_idle_loop_asks_the_next_round_at_once() -> None:
    asked: list[bytes] = []
    reads = rounds(Clock(), asked)
    first = reads.join()
    second = reads.join()
    reads.answered(asked[0], 5)
    reads.done(first)  # within the pace of the last round: the loop is looked at first
    await turn()  # ... and came round at once (the clock did not move)
    assert len(asked) == 2
    reads.answered(asked[1], 5)
    assert await second == 5


async def test_many_reads_on_a_busy_loop_wait_a_pace_after_the_last_round() -> None:
    asked: list[bytes] = []
    clock = Clock()
    reads = rounds(clock, asked)
    first = reads.join()
    waiting = [reads.join() for _ in range(MANY_READS)]
    reads.answered(asked[0], 5)
    reads.done(first)
    clock.now += 2 * BUSY_LAG_SECONDS  # the loop took long to come round
    await turn()
    assert len(asked) == 1
    late = reads.join()  # arrives while the round waits: joins it
    assert len(asked) == 1
    while len(asked) == 1:  # the pace is a timer of the event loop's own clock
        await asyncio.sleep(PACE / 4)
    reads.answered(asked[1], 6)
    assert [await reader for reader in [*waiting, late]] == [6] * (MANY_READS + 1)


async def test_a_few_reads_on_a_busy_loop_are_asked_for_at_once() -> None:
    asked: list[bytes] = []
    clock = Clock()
    reads = rounds(clock, asked)
    first = reads.join()
    second = reads.join()
    reads.answered(asked[0], 5)
    reads.done(first)
    clock.now += 2 * BUSY_LAG_SECONDS
    await turn()
    assert len(asked) == 2  # making them wait would gather no one else
    reads.answered(asked[1], 6)
    assert await second == 6


async def test_a_leader_change_fails_the_round_in_flight_only() -> None:
    asked: list[bytes] = []
    reads = rounds(Clock(), asked)
    first = reads.join()
    second = reads.join()
    reads.leader_changed()
    assert first.exception() is errors.LEADER_CHANGED
    reads.done(first)
    await turn()
    assert len(asked) == 2  # the queued read gets a round of its own
    reads.answered(asked[1], 9)
    assert await second == 9


async def test_a_read_that_gives_up_leaves_the_others_waiting() -> None:
    asked: list[bytes] = []
    clock = Clock()
    reads = rounds(clock, asked)
    first = reads.join()
    quitter, stayer = reads.join(), reads.join()
    quitter.cancel()  # its client went away
    reads.done(quitter)
    reads.answered(asked[0], 3)
    clock.now += PACE
    reads.done(first)
    reads.answered(asked[1], 4)
    assert await stayer == 4
    assert quitter.cancelled()


async def test_a_lost_round_is_asked_again_for_the_same_reads() -> None:
    asked: list[bytes] = []
    clock = Clock()
    reads = rounds(clock, asked, retry_after=0.2)
    reader = reads.join()
    clock.now += 0.1
    reads.retry_if_lost()
    assert len(asked) == 1
    clock.now += 0.2
    reads.retry_if_lost()
    assert len(asked) == 2
    reads.answered(asked[1], 8)
    assert await reader == 8


async def test_a_stopping_member_fails_every_waiting_read() -> None:
    asked: list[bytes] = []
    reads = rounds(Clock(), asked)
    in_flight = reads.join()
    queued = reads.join()
    reads.fail(errors.STOPPED)
    assert in_flight.exception() is errors.STOPPED
    assert queued.exception() is errors.STOPPED


async def test_a_lone_voter_reads_without_a_read_index_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, _ = lone_leader()
    asked: list[bytes] = []
    monkeypatch.setattr(node, "read_index", asked.append)
    applied = [0]
    proposals = Proposals(
        node, Timing(), wake=lambda: None, check_serving=lambda: None, applied=lambda: applied[0]
    )
    read = asyncio.ensure_future(proposals.linearizable_read())
    await turn()
    assert not read.done()  # it waits until its member applied the commit index ...
    applied[0] = node.commit_index
    proposals.applied_to(applied[0])
    await read
    assert asked == []  # ... and asked Raft for nothing


async def test_a_lone_voter_that_gains_a_voter_asks_for_a_read_index_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node, _ = lone_leader()
    asked: list[bytes] = []
    monkeypatch.setattr(node, "read_index", asked.append)
    proposals = Proposals(
        node, Timing(), wake=lambda: None, check_serving=lambda: None, applied=lambda: 10**9
    )
    await proposals.linearizable_read()  # alone: no round
    assert asked == []
    node.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, 2))
    proposals.conf_changed(0)  # as the replica tells it once the change is applied
    read = asyncio.ensure_future(proposals.linearizable_read())
    await turn()
    assert len(asked) == 1  # one voter more: the read needs a round
    read.cancel()
