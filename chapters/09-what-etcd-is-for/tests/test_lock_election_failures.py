"""Chapter 9: what a lock and an election do when their holder fails, on a real three-member kv
cluster. A lock holder that stops renewing its lease (its process died) loses the lock when the
lease expires, never before; the waiter gets it with a higher fencing token, and the old
holder's guarded write fails. An election leader whose member is partitioned away loses
leadership after its lease's TTL; exactly one other candidate leads, and an observer sees it.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from kv.client import KVClient, put_op
from kv.recipes import Election, Mutex, NotLeaderError, Session
from tests.cluster.processes import ProcessCluster, wait_for
from tests.recipes.lines import wait_for_line

pytestmark = pytest.mark.etcd

#: Seconds a session's lease lives unrenewed (kv's minimum with the fast test timers is 2).
TTL = 3
#: The TTL server-side is whole seconds; a waiter hears of a delete a moment after it.
ROUNDING = 1.0
#: Seconds to wait for what must follow a lease's end.
PATIENCE = TTL + 15.0


async def remaining_ttl(client: KVClient, lease_id: int) -> float:
    """The moment (monotonic) the lease will end at the earliest, as the cluster says now."""
    answer = await client.lease_time_to_live(lease_id)
    assert answer.TTL > 0, "the lease expired before the test could look at it"
    return time.monotonic() + answer.TTL


# --8<-- [start:dead-holder]
async def test_a_dead_holder_loses_the_lock_at_its_leases_end_and_its_guarded_write_fails(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    async with KVClient(leader.endpoint) as client:
        holder = Mutex(await Session.open(client, ttl=TTL), "printer")
        await holder.lock()
        waiter = Mutex(await Session.open(client, ttl=TTL), "printer")
        waiting = asyncio.create_task(waiter.lock())
        await wait_for_line(client, "printer", 2)
        holder.session.orphan()  # the holder's process died: nobody renews its lease
        earliest = await remaining_ttl(client, holder.session.lease_id)

        await asyncio.wait_for(waiting, PATIENCE)
        assert time.monotonic() >= earliest - ROUNDING  # not before the lease ended
        assert waiter.revision > holder.revision  # the fencing token grew
        late = await client.txn([holder.is_owner()], [put_op("printer/job", "stale")])
        assert not late.succeeded  # the old holder's guarded write is refused
        done = await client.txn([waiter.is_owner()], [put_op("printer/job", "fresh")])
        assert done.succeeded
        waiter.session.orphan()


# --8<-- [end:dead-holder]


async def test_a_holder_whose_client_closed_without_revoking_keeps_the_lock_until_its_ttl(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    async with KVClient(leader.endpoint) as client:
        async with KVClient(leader.endpoint) as doomed:
            holder = Mutex(await Session.open(doomed, ttl=TTL), "printer")
            await holder.lock()
            holder.session.orphan()
        # The holder's connection is closed; its lease is not revoked, so it holds on.
        earliest = await remaining_ttl(client, holder.session.lease_id)
        waiter = Mutex(await Session.open(client, ttl=TTL), "printer")
        await asyncio.wait_for(waiter.lock(), PATIENCE)
        assert time.monotonic() >= earliest - ROUNDING
        assert waiter.revision > holder.revision
        waiter.session.orphan()


async def test_a_partitioned_leader_loses_its_election_to_exactly_one_other_candidate(
    cluster: ProcessCluster,
) -> None:
    raft_leader, _ = await cluster.agreed_leader()
    cut_off, other = (member for member in cluster.members if member is not raft_leader)
    async with (
        KVClient(cut_off.endpoint) as on_cut_off,
        KVClient(other.endpoint) as on_other,
        KVClient(raft_leader.endpoint) as on_leader,
    ):
        first = Election(await Session.open(on_cut_off, ttl=TTL), "scheduler")
        await first.campaign("first")
        observer = Election(await Session.open(on_leader, ttl=TTL), "scheduler")
        observed = observer.observe()
        assert (await anext(observed)).kv.value == b"first"
        second = Election(await Session.open(on_other, ttl=TTL), "scheduler")
        third = Election(await Session.open(on_leader, ttl=TTL), "scheduler")
        seconds = asyncio.create_task(second.campaign("second"))
        await wait_for_line(on_leader, "scheduler", 2)
        thirds = asyncio.create_task(third.campaign("third"))
        await wait_for_line(on_leader, "scheduler", 3)

        await cluster.isolate(cut_off)
        try:
            earliest = await remaining_ttl(on_leader, first.session.lease_id)
            next_leader = await asyncio.wait_for(anext(observed), PATIENCE)
            assert time.monotonic() >= earliest - ROUNDING  # not before the lease ended
            assert next_leader.kv.value == b"second"  # the next in line, and only it
            await asyncio.wait_for(seconds, PATIENCE)
            assert not thirds.done()
            assert (await observer.leader()).kv.value == b"second"
        finally:
            await cluster.heal()

        async def proclaimed() -> bool | None:
            try:
                await first.proclaim("first again")
            except NotLeaderError:
                return True
            raise AssertionError("a leader whose lease expired proclaimed")

        # Back in touch, the old leader learns it lost: its proclaim is refused.
        await wait_for(proclaimed, "the old leader's proclaim is refused", PATIENCE)
        await observed.aclose()
        thirds.cancel()
        for election in (first, second, third, observer):
            election.session.orphan()
