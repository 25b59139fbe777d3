"""Seeded simulator workloads, run and checked for linearizability: the helper the chapters'
workload suites share (chapter 4's key-value workloads, chapter 5's membership churn, chapter
6's transactions, chapter 7's leases).

A run is checked twice: by values with the workload's own model, then with revisions checked
too (a search that may run out of steps, which is not a failure; only a proof of
non-linearizability is). A failure names everything needed to replay the run.
"""

from __future__ import annotations

from typing import Any

from kv.linearizability import Model, Outcome
from kv.sim import SimConfig
from kv.sim.clients.workload import Workload, WorkloadRun, faults_for, run_workload

#: The revision-checking search's budget (steps), per run.
MAX_STEPS = 2_000_000


def assert_linearizable(run: WorkloadRun, revisions: Model[Any, Any, Any], replay: str) -> None:
    """``run``'s history is linearizable by values, and not shown otherwise with revisions."""
    by_values = run.check()
    assert by_values.linearizable, f"{replay}\n{by_values}"
    with_revisions = run.check(revisions, max_steps=MAX_STEPS)
    assert with_revisions.outcome is not Outcome.NOT_LINEARIZABLE, f"{replay}\n{with_revisions}"


def run_and_check(
    seed: int,
    workload: Workload,
    revisions: Model[Any, Any, Any],
    *,
    size: int = 3,
    config: SimConfig | None = None,
) -> WorkloadRun:
    """Run ``workload`` from ``seed`` under the seed's random faults, and check it."""
    faults = faults_for(seed, size, workload.duration_ms)
    run = run_workload(seed, size=size, workload=workload, config=config, faults=faults)
    assert_linearizable(run, revisions, f"seed={seed} size={size} {run.describe()}")
    return run
