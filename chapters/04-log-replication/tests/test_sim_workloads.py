"""Random client workloads under random faults, checked for linearizability, seed by seed.

Each seed is one run (`kv.sim.clients.workload.run_workload`): a cluster, five clients sending gets,
puts and deletes of three keys through random members for four virtual seconds (and two
that only read), and the seed's random faults (`kv.sim.clients.workload.faults_for`), in episodes
held long enough for elections on both sides -- partitions (splits, bridges, one-way cuts,
a deaf leader), leaders isolated or crashed, members crashed and restarted losing what they
had not persisted (torn writes included), lost/duplicated/reordered messages, leadership
transfers -- then everything repaired. The run must converge (every member the same log and store),
and its history must be linearizable (`kv.linearizability.check`): first by values, key by
key, then with etcd's revisions, which tie all keys into one history.

The normal suite runs 100 seeds on three members, 30 on five, and 30 on plain Raft (no
PreVote, no CheckQuorum: a cut-off leader then keeps leading, and only ReadIndex's
heartbeat round keeps its reads from going stale); 20 more with frequent snapshots are in
chapter 5's ``test_sim_snapshots.py``. ``pytest -m slow`` soaks 3,100 more. A failing seed
replays with ``python -m kv.sim --seed N --faults`` (``--size 5`` for five members,
``--plain-raft``, ``--snapshot-every 3 --snapshot-keep 1`` for the snapshot soak), and the
assertion message carries the scenario.
"""

from __future__ import annotations

import pytest

from kv.linearizability import KeyValueModel, check
from kv.raft import MessageType
from kv.sim import Cluster, NetworkConfig, OpState, SimConfig
from kv.sim.clients.workload import Workload, WorkloadRun
from tests import sim_workloads

WORKLOAD = Workload()  # what python -m kv.sim runs
REVISIONS = KeyValueModel(check_revisions=True)


def run_and_check(seed: int, size: int, config: SimConfig | None = None) -> WorkloadRun:
    return sim_workloads.run_and_check(seed, WORKLOAD, REVISIONS, size=size, config=config)


@pytest.mark.parametrize("seed", range(100))
def test_three_members_under_random_faults_serve_linearizably(seed: int) -> None:
    run_and_check(seed, 3)


@pytest.mark.parametrize("seed", range(30))
def test_five_members_under_random_faults_serve_linearizably(seed: int) -> None:
    run_and_check(seed, 5)


PLAIN_RAFT = SimConfig(pre_vote=False, check_quorum=False)


@pytest.mark.parametrize("seed", range(30))
def test_plain_raft_under_random_faults_serves_linearizably(seed: int) -> None:
    run_and_check(seed, 3, PLAIN_RAFT)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 2_600))
def test_soak_three_members_under_random_faults(seed: int) -> None:
    run_and_check(seed, 3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_500))
def test_soak_five_members_under_random_faults(seed: int) -> None:
    run_and_check(seed, 5)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_500))
def test_soak_plain_raft_under_random_faults(seed: int) -> None:
    run_and_check(seed, 3, PLAIN_RAFT)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_500))
def test_soak_three_members_with_frequent_snapshots_under_random_faults(seed: int) -> None:
    run_and_check(seed, 3, SimConfig(snapshot_every=3, snapshot_keep=1))


def test_the_workloads_do_real_work() -> None:
    """The checks above mean something only if the runs have writes, reads, faults, and
    operations of every outcome; seed 0 on three members, as an example."""
    run = run_and_check(0, 3)
    states = {op.state for op in run.ops}
    assert len(run.ops) > 100 and OpState.OK in states, run.summary()
    kinds = {type(op.input).__name__ for op in run.ops}
    assert kinds == {"Get", "Put", "Delete"}, kinds
    assert len(run.cluster.scenario) >= 3, run.describe()


def test_the_checker_catches_a_write_applied_twice() -> None:
    """The whole pipeline has teeth: let the network duplicate a forwarded proposal (a real
    TCP transport never does; see `kv.sim.config.NetworkConfig.duplicate_proposals`) and
    the put is appended and applied twice -- the second time after a later put of the same
    key, which a read then no longer sees. Some seed among the first ten shows it."""
    violations = []
    for seed in range(10):
        cluster = Cluster.create(3, seed=seed)
        leader = cluster.elect_leader()
        cluster.run_for(1_000)
        follower = next(i for i in cluster.ids if i != leader)
        first, second = cluster.client(follower), cluster.client(leader)
        cluster.set_network(
            NetworkConfig(delay_ms=(1, 300), duplicate_rate=1.0, duplicate_proposals=True)
        )
        op = first.put("k", "first")

        def proposals_in_flight(cluster: Cluster) -> int:
            return sum(m.type is MessageType.PROP for _, m in cluster.in_flight())

        # One copy of the forwarded proposal arrived; the other is still on its way.
        cluster.run_until(lambda c: c.network.delivered[MessageType.PROP] == 1, 1_000)
        cluster.set_network(NetworkConfig())  # everything else is quick again
        cluster.complete(op)
        cluster.run_for(1)  # the second put starts strictly after the first returned
        cluster.complete(second.put("k", "second"))
        cluster.run_until(lambda c: proposals_in_flight(c) == 0, 1_000)
        cluster.run_for(100)
        cluster.complete(second.get("k"))
        if not check(KeyValueModel(), cluster.history).linearizable:
            violations.append(seed)
    assert violations, "no seed applied a duplicated proposal after a later put"


def test_a_slow_soak_is_excluded_from_the_default_run(pytestconfig: pytest.Config) -> None:
    """``-m slow`` opts in; without it, pyproject's addopts deselect the soaks."""
    addopts = pytestconfig.getini("addopts")
    assert "not slow" in " ".join(addopts if isinstance(addopts, list) else [addopts])
