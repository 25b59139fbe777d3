"""A client's write or read that waits past etcd's request timeout gets etcd's error, at that
moment (`kv.server.replica.clients.proposals`), from one timer for all the waiting requests
(`kv.server.replica.clients.waiters.Deadlines`).

The `Proposals` tests drive a real `RawNode` that leads alone, with no Ready loop, so nothing
is ever applied: each request can only end at its deadline, a few hundredths of a second
after it was asked (a `Timing` whose request timeout is short). The `Deadlines` tests use
deadlines as short; the event loop's own timer ends every wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from kv.server import errors
from kv.server.errors import EtcdError
from kv.server.replica.clients.proposals import Proposals
from kv.server.replica.clients.waiters import Deadlines
from kv.server.replica.timing import Timing

from .test_proposals_batch import lone_leader, put

#: The request timeout of these tests, in seconds.
TIMEOUT = 0.05


class ShortTiming(Timing):
    """etcd's default timing, but requests time out after `TIMEOUT` seconds."""

    @property
    def request_timeout(self) -> float:
        return TIMEOUT


def proposals_never_applying() -> Proposals:
    """The clients' side of a lone leader whose loop never turns: nothing gets applied."""
    node, _ = lone_leader()
    return Proposals(
        node, ShortTiming(), wake=lambda: None, check_serving=lambda: None, applied=lambda: 0
    )


async def failure_of(request: Awaitable[object]) -> tuple[EtcdError, float]:
    """The etcd error ``request`` raised, and how long it took to."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(EtcdError) as raised:
        await request
    return raised.value, loop.time() - started


async def test_a_write_never_applied_fails_with_etcds_timeout_at_the_request_timeout() -> None:
    proposals = proposals_never_applying()
    error, waited = await failure_of(proposals.propose(put(b"k")))
    assert error is errors.TIMEOUT
    assert str(error) == "etcdserver: request timed out"
    assert waited >= TIMEOUT
    assert proposals.failed == 1 and proposals.pending == 0


async def test_a_write_timed_out_soon_after_a_leader_change_says_the_leader_may_have_failed() -> (
    None
):
    proposals = proposals_never_applying()
    proposals.leader_changed()
    error, _ = await failure_of(proposals.propose(put(b"k")))
    assert error is errors.TIMEOUT_DUE_TO_LEADER_FAIL


async def test_writes_asked_together_time_out_together_each_with_the_error() -> None:
    proposals = proposals_never_applying()
    writes = [proposals.propose(put(b"k%d" % i)) for i in range(3)]
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results == [errors.TIMEOUT] * 3
    assert proposals.failed == 3


async def test_a_linearizable_read_never_applied_fails_with_etcds_timeout() -> None:
    proposals = proposals_never_applying()
    error, waited = await failure_of(proposals.linearizable_read())
    assert error is errors.TIMEOUT
    assert waited >= TIMEOUT
    assert proposals.failed == 0  # etcd counts failed proposals, not reads


async def test_a_future_done_before_its_deadline_keeps_its_result() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    answered: asyncio.Future[str] = loop.create_future()
    late: asyncio.Future[str] = loop.create_future()
    deadlines.add(answered, loop.time() + TIMEOUT, lambda: errors.TIMEOUT)
    deadlines.add(late, loop.time() + TIMEOUT, lambda: errors.TIMEOUT)
    answered.set_result("applied")
    with pytest.raises(EtcdError):
        await late
    assert answered.result() == "applied"


async def test_the_error_is_made_when_the_deadline_passes_not_when_the_future_is_added() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    future: asyncio.Future[None] = loop.create_future()
    made_at: list[float] = []

    def error() -> EtcdError:
        made_at.append(loop.time())
        return errors.TIMEOUT

    deadline = loop.time() + TIMEOUT
    deadlines.add(future, deadline, error)
    assert made_at == []
    with pytest.raises(EtcdError):
        await future
    assert made_at[0] >= deadline


async def test_a_future_added_with_an_earlier_deadline_than_the_last_fails_at_its_own() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    later: asyncio.Future[None] = loop.create_future()
    earlier: asyncio.Future[None] = loop.create_future()
    failed: list[str] = []

    def timed_out(name: str) -> Callable[[], EtcdError]:
        def error() -> EtcdError:
            failed.append(name)
            return errors.TIMEOUT

        return error

    deadlines.add(later, loop.time() + 4 * TIMEOUT, timed_out("later"))
    deadlines.add(earlier, loop.time() + TIMEOUT, timed_out("earlier"))
    with pytest.raises(EtcdError):
        await earlier
    assert failed == ["earlier"] and not later.done()
    with pytest.raises(EtcdError):
        await later
    assert failed == ["earlier", "later"]


async def test_futures_answered_at_the_head_are_forgotten_and_the_rest_still_time_out() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    answered = [loop.create_future() for _ in range(3)]
    waiting: asyncio.Future[None] = loop.create_future()
    for future in [*answered, waiting]:
        deadlines.add(future, loop.time() + TIMEOUT, lambda: errors.TIMEOUT)
    for future in answered:
        future.set_result(None)
    deadlines.forget_done()
    assert len(deadlines) == 1
    with pytest.raises(EtcdError):
        await waiting
    assert len(deadlines) == 0


async def test_a_member_that_stops_fails_its_waiting_write_with_its_error_not_a_timeout() -> None:
    proposals = proposals_never_applying()
    write = asyncio.ensure_future(proposals.propose(put(b"k")))
    await asyncio.sleep(0)  # the write is queued and waits
    proposals.fail(errors.STOPPED)
    error, waited = await failure_of(write)
    assert error is errors.STOPPED and waited < TIMEOUT
