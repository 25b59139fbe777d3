"""The space quota's second check, at apply time, on three members: the real etcd 3.4 beside
kv (chapter 2's quota, replicated).

etcd checks the quota when a request arrives, on the member the client asked, and again when
each member applies it (``quotaApplierV3`` in ``etcdserver/apply.go``): a put that does not fit
that member's backend is applied all the same, answered ``ErrNoSpace``, and makes the member
raise NOSPACE through the log (``applyEntryNormal``), unless NOSPACE is raised already.

Members' backends differ in size only after a defragment, which each member does on its own:
so the test fills the cluster, deletes and compacts (the backends keep their size: free pages
count), defragments one follower, and sends it a put whose estimated cost fits its small
backend and not the others'. The put is answered OK by the follower, applied everywhere, and
the two other members each raise NOSPACE; from then on every member refuses puts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.cluster.processes import ProcessCluster, caught_up, wait_for
from tests.compat.clusters import applied_alike, cluster_pair, roles
from tests.compat.normalise import normalise_outcome
from tests.compat.servers import Server, ServerOptions

pytestmark = pytest.mark.etcd

QUOTA = 2_000_000
FILL_VALUE = b"x" * 100_000
FILL_PUTS = 8
#: How far past the quota the put lands on the members that did not defragment.
OVERSHOOT = 4096
#: What etcd adds to a put's key and value in its estimate (etcd: ``kvOverhead``).
KV_OVERHEAD = 256
KEY = b"big"
NO_SPACE = "etcdserver: mvcc: database space exceeded"


async def db_size(member: Server) -> int:
    async with KVClient(member.endpoint) as client:
        return int((await client.status()).dbSize)


async def shrink_one_follower(cluster: ProcessCluster) -> tuple[Server, list[Server]]:
    """Fill, delete, compact; defragment one follower only. Returns it and the others."""
    leader, (small, *others) = await roles(cluster)
    async with KVClient(leader.endpoint) as client:
        for number in range(FILL_PUTS):
            await client.put(b"fill/%d" % number, FILL_VALUE)
        await client.delete_range(b"fill/", b"fill0")
        revision = (await client.status()).header.revision
        await client.compact(revision, physical=True)
    await caught_up(small, leader)
    async with KVClient(small.endpoint) as client:
        await client.defragment()
    return small, [leader, *others]


async def nospace_raised_by(cluster: ProcessCluster, count: int) -> set[str]:
    """Wait until ``count`` members have raised NOSPACE; their names."""
    names = {member.member_id: member.name for member in cluster.members}

    async def probe() -> set[str] | None:
        async with KVClient(cluster.members[0].endpoint) as client:
            alarms = (await client.alarm_list()).alarms
        raised = {names.get(alarm.memberID, str(alarm.memberID)) for alarm in alarms}
        return raised if len(raised) >= count else None

    return await wait_for(probe, f"{cluster.kind}: {count} members raise NOSPACE")


async def put_past_the_others(cluster: ProcessCluster) -> dict[str, Any]:
    """The put that fits the defragmented follower's quota and not the others'; what the
    follower answers, and who raised NOSPACE (as roles), and what a next put gets."""
    small, others = await shrink_one_follower(cluster)
    sizes = [await db_size(member) for member in others]
    cost = QUOTA - min(sizes) + OVERSHOOT
    assert await db_size(small) + cost < QUOTA, f"{cluster.kind}: the defragment did not shrink"
    roles_of = {small.name: "defragmented follower"} | {
        member.name: "leader" if i == 0 else "other follower" for i, member in enumerate(others)
    }
    async with KVClient(small.endpoint) as client:
        value = b"y" * (cost - KV_OVERHEAD - len(KEY))
        answered = normalise_outcome(await client.put(KEY, value), small)
        raised = await nospace_raised_by(cluster, len(others))
        try:
            refused = normalise_outcome(await client.put(b"small", b"v"), small)
        except EtcdError as error:
            refused = normalise_outcome(error, small)
    (state,) = await applied_alike(cluster)
    return {
        "answered": answered,
        "raised by": sorted(roles_of[name] for name in raised),
        "next put": refused,
        "revision": state[0],
    }


async def test_a_put_over_the_quota_of_other_members_applies_and_they_raise_nospace(
    tmp_path: Path,
) -> None:
    with cluster_pair(tmp_path, tuple(ServerOptions(quota_backend_bytes=QUOTA).flags())) as both:
        seen = [await put_past_the_others(cluster) for cluster in both]
    assert seen[1] == seen[0]
    assert seen[0]["raised by"] == ["leader", "other follower"]
    assert seen[0]["next put"] == {"error": {"code": "RESOURCE_EXHAUSTED", "message": NO_SPACE}}
    # 8 fills, 1 range delete, the big put: applied on every member.
    assert seen[0]["revision"] == FILL_PUTS + 3
