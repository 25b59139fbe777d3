"""Two 3-member clusters side by side: the real etcd 3.4 beside the subject (chapters 6-8).

The differential tests that need more than one member (txn, leases, watches, the space quota)
start one `tests.cluster.processes.ProcessCluster` of each kind with `cluster_pair`, send the
same request to the same role on each side (`roles`: the leader or a follower; which member
wins an election is random), and compare the answers. `applied_alike` (and
`tests.cluster.processes.caught_up`) wait, with a deadline, for members to have applied what
another member has, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kv.client import KVClient
from tests.cluster.processes import ProcessCluster, wait_for
from tests.compat.conftest import subject_kind
from tests.compat.servers import Server, free_ports


@contextmanager
def cluster_pair(
    workdir: Path,
    extra_flags: tuple[str, ...] = (),
    *,
    prepare: Callable[[ProcessCluster], object] | None = None,
) -> Iterator[tuple[ProcessCluster, ProcessCluster]]:
    """A started 3-member etcd cluster (the reference) and subject cluster, stopped after.

    ``prepare`` is called with each cluster before it starts, e.g. to give a member a flag
    of its own (`tests.compat.http_endpoints.with_metrics_url`)."""
    ports = free_ports(12)  # both clusters' ports at once, so that none is given twice
    reference = ProcessCluster.create("etcd", workdir / "etcd", 3, extra_flags, ports=ports[:6])
    subject = ProcessCluster.create(
        subject_kind(), workdir / "subject", 3, extra_flags, ports=ports[6:]
    )
    try:
        for cluster in (reference, subject):
            if prepare is not None:
                prepare(cluster)
            cluster.start()
        yield reference, subject
    finally:
        reference.stop()
        subject.stop()


async def roles(cluster: ProcessCluster) -> tuple[Server, list[Server]]:
    """The leader all members agree on, and the other members (in name order)."""
    leader, _ = await cluster.agreed_leader()
    return leader, [member for member in cluster.up if member is not leader]


async def applied_alike(cluster: ProcessCluster) -> set[tuple[int, int]]:
    """The members' (revision, HashKV) once all have applied the same raft entries: one pair
    if they agree."""

    async def probe() -> set[tuple[int, int]] | None:
        applied, seen = set(), set()
        for member in cluster.up:
            async with KVClient(member.endpoint) as client:
                applied.add((await client.status()).raftAppliedIndex)
                hashed = await client.hash_kv()
            seen.add((hashed.header.revision, hashed.hash))
        return seen if len(applied) == 1 else None

    return await wait_for(probe, f"{cluster.kind} members apply the same entries")
