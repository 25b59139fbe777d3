"""A busy leader paces its Ready turns (`kv.server.replica.pacing`): when the next one may
start.

Each test drives `TurnPacing` with the test's own clocks and sleep: the sleep records what it
was asked to wait and moves the clock, so nothing depends on real time. The event loop's
thread used no CPU unless a test says so; a zero sleep is then the probe of the event loop,
and the test decides how long the loop took to come back to it. Writes arrive only while the
pacing sleeps, as many in each timed sleep as the test lists (after the list, none).
"""

from __future__ import annotations

import pytest

from kv.server.replica.clients.reads import BUSY_LAG_SECONDS
from kv.server.replica.pacing import BUSY_SHARE, ENOUGH_WRITES, GATHER_STEPS, TurnPacing

PACE = 0.01
STEP = PACE / GATHER_STEPS
BUSY = 2 * BUSY_LAG_SECONDS
IDLE = BUSY_LAG_SECONDS / 10
#: Writes arrive in every step, the whole pace long.
STEADY = [ENOUGH_WRITES] * (2 * GATHER_STEPS)


class Loop:
    """The test's clock, and a sleep that advances it: by ``lag`` for the probe (a zero
    sleep: the time the loop took to run what was ready), by the delay otherwise, during
    which the next count of ``arrivals`` joins the writes gathered for the next turn."""

    def __init__(self, lag: float, arrivals: list[int] | None = None) -> None:
        self.now = 100.0
        self.lag = lag
        self.slept: list[float] = []
        #: CPU seconds of the event loop's thread.
        self.used = 0.0
        self.arrivals = list(arrivals or [])
        #: Writes gathered for the next turn.
        self.gathered = 0

    def clock(self) -> float:
        return self.now

    def cpu(self) -> float:
        return self.used

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds == 0:
            self.now += self.lag
            return
        self.now += max(seconds, 0.0)
        if self.arrivals:
            self.gathered += self.arrivals.pop(0)


def pacing(loop: Loop, *, waiting: int) -> TurnPacing:
    return TurnPacing(
        PACE,
        now=loop.clock,
        cpu=loop.cpu,
        waiting=lambda: waiting,
        gathered=lambda: loop.gathered,
        sleep=loop.sleep,
    )


async def test_a_turn_with_few_writes_waiting_starts_at_once_without_a_look_at_the_loop() -> None:
    loop = Loop(lag=BUSY, arrivals=STEADY)
    turns = pacing(loop, waiting=3)
    await turns.next_turn()
    loop.now += PACE / 10
    await turns.next_turn()
    assert loop.slept == []


async def test_the_first_turn_starts_at_once_however_many_writes_wait() -> None:
    loop = Loop(lag=BUSY, arrivals=STEADY)
    await pacing(loop, waiting=64).next_turn()
    assert loop.slept == []


async def test_a_busy_loop_waits_while_writes_arrive_until_a_pace_after_the_last_turn() -> None:
    loop = Loop(lag=BUSY, arrivals=STEADY)
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    first = loop.now
    loop.now += PACE / 4  # the turn itself
    await turns.next_turn()
    assert loop.slept[0] == 0  # the probe
    assert sum(loop.slept) == pytest.approx(PACE - PACE / 4 - BUSY)
    assert max(loop.slept) == pytest.approx(STEP)
    assert loop.now == pytest.approx(first + PACE)


async def test_a_busy_loop_starts_the_turn_after_a_step_that_gathered_nothing() -> None:
    loop = Loop(lag=BUSY, arrivals=[ENOUGH_WRITES - 1, 1, 0, 5])
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    first = loop.now
    loop.now += PACE / 4
    await turns.next_turn()
    assert loop.slept == [0, STEP, STEP, STEP]
    assert loop.now == pytest.approx(first + PACE / 4 + BUSY + 3 * STEP)
    assert loop.gathered == ENOUGH_WRITES


async def test_a_step_that_gathered_nothing_does_not_end_the_wait_before_enough_writes() -> None:
    loop = Loop(lag=BUSY, arrivals=[ENOUGH_WRITES - 1, 0, 0, 1, 0, 9])
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    loop.now += PACE / 4
    await turns.next_turn()
    assert loop.slept == [0, STEP, STEP, STEP, STEP, STEP]
    assert loop.gathered == ENOUGH_WRITES


async def test_writes_gathered_before_the_wait_count_towards_enough() -> None:
    loop = Loop(lag=BUSY, arrivals=[0])
    loop.gathered = ENOUGH_WRITES
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    loop.now += PACE / 4
    await turns.next_turn()
    assert loop.slept == [0, STEP]


async def test_an_idle_loop_starts_the_next_turn_right_after_its_probe() -> None:
    loop = Loop(lag=IDLE, arrivals=STEADY)
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    loop.now += PACE / 4
    await turns.next_turn()
    assert loop.slept == [0]


async def test_a_turn_a_whole_pace_after_the_last_starts_at_once() -> None:
    loop = Loop(lag=BUSY, arrivals=STEADY)
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    loop.now += PACE  # a slow fsync: the last turn took the whole pace
    await turns.next_turn()
    assert loop.slept == []


async def test_the_pace_counts_from_when_the_last_turn_started() -> None:
    loop = Loop(lag=BUSY, arrivals=STEADY)
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    loop.now += PACE / 4
    await turns.next_turn()  # paced: starts at first + PACE
    second = loop.now
    loop.now += PACE / 2
    await turns.next_turn()
    assert loop.now == pytest.approx(second + PACE)


async def test_a_loop_thread_busy_since_the_last_turn_waits_without_a_probe() -> None:
    loop = Loop(lag=IDLE, arrivals=STEADY)
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    first = loop.now
    loop.now += PACE / 4
    loop.used += BUSY_SHARE * PACE / 4  # the thread ran for that share of the time
    await turns.next_turn()
    assert 0 not in loop.slept
    assert loop.now == pytest.approx(first + PACE)


async def test_a_loop_thread_mostly_idle_since_the_last_turn_looks_at_the_loop_first() -> None:
    loop = Loop(lag=IDLE, arrivals=STEADY)
    turns = pacing(loop, waiting=64)
    await turns.next_turn()
    loop.now += PACE / 4
    loop.used += BUSY_SHARE * PACE / 8
    await turns.next_turn()
    assert loop.slept == [0]
