"""Leases on three members, the real etcd 3.4 beside kv (chapter 7): etcdctl's lease commands
sent to a follower (which forwards keep-alive and timetolive to the leader) and to the leader,
and a lease that expires while its leader is killed.

One 3-member cluster of each kind per test (`tests.cluster.processes.ProcessCluster`). Each
server's lease IDs are masked in the answers (`tests.compat.leases`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.processes import ProcessCluster
from tests.compat.conftest import cluster_pair
from tests.compat.etcdctl import etcdctl
from tests.compat.leases import grant_on_both, run_lease_steps, wait_until_gone
from tests.compat.servers import Server

pytestmark = pytest.mark.etcd


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[ProcessCluster, ProcessCluster]]:
    with cluster_pair(tmp_path) as both:
        yield both


async def roles(cluster: ProcessCluster) -> tuple[Server, Server]:
    """The cluster's leader and one follower."""
    leader, _ = await cluster.agreed_leader()
    return leader, next(member for member in cluster.members if member is not leader)


async def test_lease_commands_through_a_follower_and_the_leader(
    clusters: tuple[ProcessCluster, ProcessCluster],
) -> None:
    (ref_leader, ref_follower), (sub_leader, sub_follower) = [await roles(c) for c in clusters]
    ref, sub = grant_on_both(ref_follower, sub_follower, "30")
    ref_ids, sub_ids = [ref.output["ID"]], [sub.output["ID"]]
    for ref_member, sub_member in ((ref_follower, sub_follower), (ref_leader, sub_leader)):
        results = run_lease_steps(
            (ref_member, ref_ids),
            (sub_member, sub_ids),
            [
                ["put", f"k-{ref_member is ref_leader}", "v", "--lease={lease}"],
                ["lease", "keep-alive", "--once", "{lease}"],
                ["lease", "timetolive", "{lease}", "--keys"],
                ["lease", "list"],
                ["lease", "timetolive", "1234"],
                ["lease", "keep-alive", "--once", "1234"],
            ],
        )
        assert results[1].output["TTL"] == 30
        assert results[2].output["ttl"] in (29, 30)  # the follower's round trip may cost 1
    run_lease_steps(
        (ref_follower, ref_ids),
        (sub_follower, sub_ids),
        [["lease", "revoke", "{lease}"], ["get", "", "--from-key"], ["lease", "list"]],
    )


async def test_a_lease_expiring_while_its_leader_is_killed_goes_after_the_new_deadline(
    clusters: tuple[ProcessCluster, ProcessCluster],
) -> None:
    """No early revoke: the new leader extends the lease (TTL + election timeout from its
    election), so the key outlives the old deadline; then it goes, on every member."""
    _, subject = clusters
    leader, follower = await roles(subject)
    granted = etcdctl(follower.endpoint, ["lease", "grant", "4"])
    lease_id = granted.output["ID"]
    assert etcdctl(follower.endpoint, ["put", "k", "v", f"--lease={lease_id:x}"]).exit_code == 0
    time.sleep(2.0)  # half the TTL has gone on the old leader's clock
    subject.kill(leader)
    killed_at = time.monotonic()
    new_leader, _ = await subject.agreed_leader()
    elected_at = time.monotonic()
    assert new_leader is not leader
    took = wait_until_gone(new_leader, "k", timeout=15.0)
    gone_at = elected_at + took
    # The old deadline was ~2 s after the kill; the new one is at least TTL (4 s) after the
    # new leader's first applied entry, which is after the kill.
    assert gone_at - killed_at >= 4.0, f"revoked {gone_at - killed_at:.1f} s after the kill"
    for member in subject.up:
        assert not etcdctl(member.endpoint, ["get", "k"]).output.get("kvs"), member.name
    lease = etcdctl(new_leader.endpoint, ["lease", "timetolive", f"{lease_id:x}"])
    assert lease.output["ttl"] == -1
