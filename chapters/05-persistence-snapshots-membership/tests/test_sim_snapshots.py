"""Snapshots and log compaction on the simulated cluster (Raft §7).

With ``SimConfig.snapshot_every``, each member snapshots its state machine every few applied
entries and compacts its log behind it. A member that falls behind the leader's compaction
can no longer be sent entries: the leader sends its snapshot (MsgSnap), the member replaces
its state machine with it, and the log continues from there. A restarted member starts from
its own snapshot and replays only what follows. Failure messages carry the seed and scenario.
"""

from __future__ import annotations

import pytest

from kv.linearizability import KeyValueModel, Outcome
from kv.raft import events as ev
from kv.sim import Cluster, OpState, SimConfig
from kv.sim.clients.workload import Workload, faults_for, run_workload

ELECTION_MS = 1_000
SNAPSHOTS = SimConfig(snapshot_every=4, snapshot_keep=2)


def put_many(cluster: Cluster, endpoint: int, count: int) -> None:
    client = cluster.client(endpoint)
    for i in range(count):
        op = cluster.complete(client.put(f"k{i % 3}", f"v{i}"))
        assert op.state is OpState.OK, f"{op} [{cluster.describe()}]"


@pytest.mark.parametrize("seed", range(8))
def test_a_member_behind_the_compaction_catches_up_from_the_leaders_snapshot(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed, config=SNAPSHOTS)
    leader = cluster.elect_leader()
    follower = next(i for i in cluster.ids if i != leader)
    cluster.crash(follower)
    put_many(cluster, leader, 20)
    assert cluster.nodes[leader].storage.first_index() > cluster.nodes[follower].last_index + 1
    cluster.restart(follower)
    assert cluster.run_until(Cluster.converged, 3 * ELECTION_MS), cluster.describe()
    sent = [e.event for e in cluster.events if isinstance(e.event, ev.SnapshotSent)]
    restored = [e.event for e in cluster.events if isinstance(e.event, ev.SnapshotRestored)]
    assert any(event.to == follower for event in sent), cluster.describe()
    assert any(event.node == follower for event in restored), cluster.describe()
    assert [cluster.nodes[follower].get(f"k{i}") for i in range(3)] == ["v18", "v19", "v17"]


@pytest.mark.parametrize("seed", range(5))
def test_a_restarted_member_starts_from_its_own_snapshot(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed, config=SNAPSHOTS)
    leader = cluster.elect_leader()
    put_many(cluster, leader, 10)
    follower = next(i for i in cluster.ids if i != leader)
    assert cluster.run_until(lambda c: c.nodes[follower].get("k0") == "v9", ELECTION_MS)
    snapshot = cluster.nodes[follower].storage.snapshot()
    assert snapshot.metadata.index > 0, "the follower took a snapshot"
    cluster.crash(follower)
    cluster.restart(follower)
    assert cluster.nodes[follower].applied == snapshot.metadata.index
    assert cluster.run_until(Cluster.converged, 2 * ELECTION_MS), cluster.describe()
    assert cluster.nodes[follower].get("k0") == "v9"


@pytest.mark.parametrize("seed", range(20))
def test_workloads_with_frequent_snapshots_under_random_faults_serve_linearizably(
    seed: int,
) -> None:
    workload = Workload(clients=5, duration_ms=4_000)
    faults = faults_for(seed, 3, workload.duration_ms)
    run = run_workload(seed, workload=workload, config=SNAPSHOTS, faults=faults)
    result = run.check()
    assert result.linearizable, f"seed={seed} {run.describe()}\n{result}"
    revisions = run.check(KeyValueModel(check_revisions=True), max_steps=2_000_000)
    assert revisions.outcome is not Outcome.NOT_LINEARIZABLE, f"{run.describe()}\n{revisions}"
