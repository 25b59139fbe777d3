"""Txn on three members, the real etcd 3.4 beside kv: sent to the leader and to followers, a txn
either applies on every member or fails on every member (chapter 6).

One 3-member cluster of each kind for the module (`tests.cluster.processes.ProcessCluster`).
Each step goes to the same role on both sides (the leader, or a follower) and the answers
must be equal once the header's identity (cluster and member id, term) is set aside; then
every member of each side must report the same revision and the same HashKV, which is what
etcd bug #18667 broke: followers stripped a txn's ranges before applying it, so a txn whose
range read a compacted revision failed on the leader and applied its put on the followers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from kv.client import KVClient, compare, put_op, range_op
from kv.server.errors import EtcdError
from tests.cluster.processes import ProcessCluster, wait_for
from tests.compat.conftest import cluster_pair
from tests.compat.scenario import ScenarioMismatch, render, side_by_side
from tests.compat.servers import Server

pytestmark = pytest.mark.etcd

Call = Callable[[KVClient], Awaitable[Message]]


@dataclass(slots=True)
class Side:
    cluster: ProcessCluster

    async def roles(self) -> tuple[Server, list[Server]]:
        leader, _ = await self.cluster.agreed_leader()
        return leader, [m for m in self.cluster.members if m is not leader]

    async def states(self) -> set[tuple[int, int]]:
        """The members' (revision, HashKV) once all have applied the same raft entries: one
        pair if they agree."""

        async def probe() -> set[tuple[int, int]] | None:
            applied, seen = set(), set()
            for member in self.cluster.members:
                async with KVClient(member.endpoint) as client:
                    applied.add((await client.status()).raftAppliedIndex)
                    hashed = await client.hash_kv()
                seen.add((hashed.header.revision, hashed.hash))
            return seen if len(applied) == 1 else None

        return await wait_for(probe, f"{self.cluster.kind} members apply the same entries")

    async def agreed_state(self) -> tuple[int, int]:
        """The members' common (revision, HashKV)."""
        states = await self.states()
        assert len(states) == 1, f"{self.cluster.kind} members disagree: {sorted(states)}"
        return states.pop()


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    with cluster_pair(tmp_path_factory.mktemp("txn-clusters")) as (reference, subject):
        yield Side(reference), Side(subject)


def without_identity(outcome: Message | EtcdError) -> dict[str, Any]:
    if isinstance(outcome, EtcdError):
        return {"error": {"code": outcome.code.name, "message": outcome.message}}
    shown = MessageToDict(outcome)
    header = shown.get("header", {})
    for field in ("clusterId", "memberId", "raftTerm"):
        header.pop(field, None)
    return shown


async def on_both(both: tuple[Side, Side], role: str, label: str, call: Call) -> dict[str, Any]:
    """Send ``call`` to the member in ``role`` (``leader``/``follower``) of each side; compare."""
    __tracebackhide__ = True
    outcomes = []
    for side in both:
        leader, followers = await side.roles()
        member = leader if role == "leader" else followers[0]
        async with KVClient(member.endpoint) as client:
            try:
                outcome: Message | EtcdError = await call(client)
            except EtcdError as error:
                outcome = error
        outcomes.append(without_identity(outcome))
    if outcomes[0] != outcomes[1]:
        table = side_by_side(render(outcomes[0]), render(outcomes[1]), "etcd", "subject")
        raise ScenarioMismatch(f"{label} (sent to the {role}): differs\n{table}")
    return outcomes[0]


async def agreed(both: tuple[Side, Side]) -> int:
    """Each side's members agree among themselves; both sides are at the same revision."""
    states = [await side.agreed_state() for side in both]
    assert states[0][0] == states[1][0], f"revisions differ: etcd {states[0]}, subject {states[1]}"
    return states[0][0]


async def test_a_compare_and_swap_through_a_follower_applies_on_every_member(
    sides: tuple[Side, Side],
) -> None:
    both = sides
    await on_both(both, "leader", "put k", lambda c: c.put(b"cas", b"1"))
    for expected, new in ((b"1", b"2"), (b"1", b"3"), (b"2", b"4")):
        for role in ("follower", "leader"):
            await on_both(
                both,
                role,
                f"cas {expected!r} -> {new!r}",
                lambda c, e=expected, n=new: c.txn(
                    [compare(b"cas", "value", "=", e)],
                    [put_op(b"cas", n, prev_kv=True)],
                    [range_op(b"cas")],
                ),
            )
    await agreed(both)


async def test_a_linearizable_read_only_txn_on_a_follower_sees_the_last_write(
    sides: tuple[Side, Side],
) -> None:
    both = sides
    for value in (b"x", b"y"):
        await on_both(both, "leader", "put seen", lambda c, v=value: c.put(b"seen", v))
        read = await on_both(
            both, "follower", "read-only txn", lambda c: c.txn(success=[range_op(b"seen")])
        )
        assert read["responses"][0]["responseRange"]["count"] == "1"


async def test_a_txn_reading_a_compacted_revision_fails_on_every_member(
    sides: tuple[Side, Side],
) -> None:
    """etcd bug #18667, still in 3.4.23: a follower that no client waits on strips the txn's
    ranges before applying it, so the range at a compacted revision fails on the leader and
    on the member the client asked, and the put applies on the other follower. kv never
    strips: the txn fails on every member. (Last in the module: etcd's members disagree
    afterwards.)"""
    both = sides
    for value in (b"1", b"2", b"3"):
        await on_both(both, "leader", "put c18667", lambda c, v=value: c.put(b"c18667", v))
    revision = await agreed(both)
    await on_both(both, "leader", "compact", lambda c: c.compact(revision))
    before = await agreed(both)
    failed = await on_both(
        both,
        "follower",
        "range at a compacted revision, then a put",
        lambda c: c.txn(success=[range_op(b"c18667", revision=revision - 1), put_op(b"z", b"1")]),
    )
    assert failed["error"]["code"] == "OUT_OF_RANGE"
    for side in both:
        states = await side.states()
        if side.cluster.kind == "kv":
            assert len(states) == 1 and {state[0] for state in states} == {before}
        else:
            assert {state[0] for state in states} == {before, before + 1}  # the bug
