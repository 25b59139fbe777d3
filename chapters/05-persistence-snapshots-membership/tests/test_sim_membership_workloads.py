"""Membership changes under load and random faults, checked for linearizability, seed by seed.

Each seed is one run of chapter 4's workload (`kv.sim.clients.workload.run_workload`: five clients
and two readers on three keys for four virtual seconds) with the seed's random faults
(`kv.sim.clients.workload.faults_for`) and, on top, the seed's membership churn
(`kv.sim.membership.steps.churn_for`): a member added as a learner, promoted once caught up, a
voter removed -- the leader about one time in three -- and again, one change at a time, while
partitions, crashes, lossy links and leadership transfers come and go. The clients follow the
membership as clientv3 does (new voters become endpoints, removed members stop being ones).
The run must converge and its history must be linearizable, by values and with etcd's
revisions.

The normal suite runs 30 seeds, 15 more with frequent snapshots (a newcomer then catches up
from the leader's snapshot) and 10 on five members; ``pytest -m slow`` soaks 500 more. A
failing seed replays with ``python -m kv.sim --seed N --faults --membership`` (add
``--snapshot-every 4 --snapshot-keep 2`` or ``--size 5`` for those seeds).
"""

from __future__ import annotations

import random

import pytest

from kv.linearizability import KeyValueModel
from kv.raft import events as ev
from kv.sim import MemberOpState, NodeLeft, RemoveLeader, Scenario, SimConfig, membership_churn
from kv.sim.clients.workload import Workload, WorkloadRun, faults_for, run_workload
from kv.sim.membership.operator import ChangeKind
from kv.sim.membership.steps import churn_for
from tests.sim_workloads import assert_linearizable

WORKLOAD = Workload()  # what python -m kv.sim runs
SNAPSHOTS = SimConfig(snapshot_every=4, snapshot_keep=2)
REVISIONS = KeyValueModel(check_revisions=True)


def run_with_churn(seed: int, size: int = 3, config: SimConfig | None = None) -> WorkloadRun:
    duration = WORKLOAD.duration_ms
    churn = churn_for(seed, duration)
    faults = Scenario.of(*faults_for(seed, size, duration).steps, *churn.steps)
    run = run_workload(seed, size=size, workload=WORKLOAD, config=config, faults=faults)
    replay = f"seed={seed} size={size} {run.describe()}"
    assert_linearizable(run, REVISIONS, replay)
    done = [op for op in run.cluster.membership.ops if op.state is MemberOpState.DONE]
    assert done, f"no membership change took effect: {replay}"
    return run


@pytest.mark.parametrize("seed", range(30))
def test_membership_changes_under_load_and_faults_serve_linearizably(seed: int) -> None:
    run_with_churn(seed)


@pytest.mark.parametrize("seed", range(15))
def test_membership_changes_with_frequent_snapshots_serve_linearizably(seed: int) -> None:
    run = run_with_churn(seed, config=SNAPSHOTS)
    cluster = run.cluster
    newcomers = {op.node for op in cluster.membership.ops if op.kind is ChangeKind.ADD_LEARNER}
    restored = [
        e.event
        for e in cluster.events
        if isinstance(e.event, ev.SnapshotRestored) and e.event.node in newcomers
    ]
    joined = [node for node in newcomers if node in cluster.nodes]
    assert not joined or restored, f"no newcomer caught up by snapshot: {run.describe()}"


@pytest.mark.parametrize("seed", range(10))
def test_membership_changes_on_five_members_serve_linearizably(seed: int) -> None:
    run_with_churn(seed, size=5)


def test_the_churn_removes_leaders_too() -> None:
    """The schedules remove the leader about one time in three, and over the suite's seeds
    removed leaders do step down and shut down."""
    schedules = [churn_for(seed, WORKLOAD.duration_ms) for seed in range(30)]
    assert sum(isinstance(step, RemoveLeader) for s in schedules for _, step in s.steps) >= 10
    run = run_with_churn(next(seed for seed in range(30) if _removes_leader(seed)))
    cluster = run.cluster
    removed_leaders = [
        op.node
        for op in cluster.membership.ops
        if op.kind is ChangeKind.REMOVE and op.state is MemberOpState.DONE and "leader" in str(op)
    ]
    left = {e.event.node for e in cluster.events if isinstance(e.event, NodeLeft)}
    assert removed_leaders and set(removed_leaders) <= left, run.describe()


def _removes_leader(seed: int) -> bool:
    steps = churn_for(seed, WORKLOAD.duration_ms).steps
    return isinstance(steps[2][1], RemoveLeader)  # the first cycle's removal


def test_a_churn_schedule_is_a_function_of_its_seed() -> None:
    first = membership_churn(random.Random("5/membership"), 4_000)
    assert str(first) == str(churn_for(5, 4_000))
    assert str(first) != str(churn_for(6, 4_000))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_300))
def test_soak_membership_changes_under_load_and_faults(seed: int) -> None:
    run_with_churn(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_200))
def test_soak_membership_changes_with_frequent_snapshots(seed: int) -> None:
    run_with_churn(seed, config=SNAPSHOTS)
