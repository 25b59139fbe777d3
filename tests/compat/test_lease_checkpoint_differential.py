"""Lease checkpoints, the real etcd 3.4.23 beside kv (chapter 7,
``--experimental-enable-lease-checkpoint``; `kv.lease.checkpoint`).

etcd 3.4 checkpoints a lease every 5 minutes and has no flag to shorten that, so what a
test-sized run can compare is everything around the checkpoint: the flags (the persist flag
alone is refused, with etcd's message) and a leader change *before* the first checkpoint,
which gives a lease its whole TTL again on both. The checkpoint itself -- a lease that keeps
the time it had left across a leader change -- is compared in a 5-minute run under
``-m slow``; kv's own tests show it in seconds with kv's shorter interval
(`tests.cluster.test_lease_checkpoint_cluster`).

Both clusters run with both flags, etcd's advice: etcd 3.4.23 started with the checkpoint
flag alone and its default logger panics while validating its flags (a nil zap logger at
``embed/config.go:642``); with ``--logger=zap`` it starts and warns, as kv does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.processes import ELECTION_TIMEOUT_S, ProcessCluster
from tests.compat.clusters import cluster_pair
from tests.compat.conftest import subject_kind
from tests.compat.etcdctl import etcdctl
from tests.compat.servers import Server, ServerOptions

pytestmark = pytest.mark.etcd

FLAGS = ("--experimental-enable-lease-checkpoint", "--experimental-enable-lease-checkpoint-persist")
REFUSAL = (
    "setting experimental-enable-lease-checkpoint-persist requires "
    "experimental-enable-lease-checkpoint"
)
#: etcd's checkpoint interval, fixed in 3.4 (kv's default too).
INTERVAL_S = 300


def exit_and_log(server: Server, timeout: float = 20.0) -> tuple[int, str]:
    """Launch ``server``, expecting it to refuse to start: its exit code and its log."""
    server.launch()
    assert server.process is not None
    try:
        code = server.process.wait(timeout)
    finally:
        server.stop()
    return code, server.log_path.read_text()


def test_the_persist_flag_without_the_checkpoint_flag_is_refused(tmp_path: Path) -> None:
    options = ServerOptions(extra_flags=("--experimental-enable-lease-checkpoint-persist",))
    results = {
        kind: exit_and_log(Server(kind, tmp_path / kind, options))
        for kind in ("etcd", subject_kind())
    }
    for kind, (code, log) in results.items():
        assert code == 1, (kind, log)
        assert REFUSAL in log, (kind, log)


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[ProcessCluster, ProcessCluster]]:
    with cluster_pair(tmp_path, FLAGS) as pair:
        yield pair


async def ttls_after_killing_the_leaders(
    clusters: tuple[ProcessCluster, ProcessCluster], ttl: int, wait: float
) -> list[int]:
    """Grant a lease of ``ttl`` on each cluster's leader, let ``wait`` seconds pass (both
    clusters at once), kill each leader, and read the lease's TTL on the next one."""
    granted = []
    for cluster in clusters:
        leader, _ = await cluster.agreed_leader()
        lease_id = etcdctl(leader.endpoint, ["lease", "grant", str(ttl)]).output["ID"]
        granted.append((cluster, leader, lease_id, time.monotonic()))
    ttls = []
    for cluster, leader, lease_id, granted_at in granted:
        time.sleep(max(0.0, granted_at + wait - time.monotonic()))  # the lease's time runs
        cluster.kill(leader)
        new_leader, _ = await cluster.agreed_leader()
        answer = etcdctl(new_leader.endpoint, ["lease", "timetolive", f"{lease_id:x}"])
        ttls.append(int(answer.output["ttl"]))
    return ttls


async def test_a_leader_change_before_the_first_checkpoint_gives_the_whole_ttl_again(
    clusters: tuple[ProcessCluster, ProcessCluster],
) -> None:
    ttls = await ttls_after_killing_the_leaders(clusters, 600, wait=2.0)
    # 600 s + the new leader's extension (0.5 s), less the moments since its election.
    assert all(600 - 2 <= ttl <= 600 + ELECTION_TIMEOUT_S for ttl in ttls), ttls


@pytest.mark.slow
async def test_a_checkpointed_lease_keeps_the_time_it_had_left_across_a_leader_change(
    clusters: tuple[ProcessCluster, ProcessCluster],
) -> None:
    """About 5 minutes: the first checkpoint of a 1000 s lease comes 300 s after its grant,
    with about 700 s left; a new leader resumes it from there, not from 1000 s."""
    ttls = await ttls_after_killing_the_leaders(clusters, 1000, wait=INTERVAL_S + 5.0)
    assert all(1000 - INTERVAL_S - 15 <= ttl <= 1000 - INTERVAL_S + 1 for ttl in ttls), ttls
