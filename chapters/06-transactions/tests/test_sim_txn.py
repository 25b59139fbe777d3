"""Multi-key txns in the simulator, under random faults, checked for linearizability.

Chapter 4's workloads with a third of the requests a two-key txn: ``if value(a) == v (or a
is absent) then put(a, w), put(b, w) else delete(b)``, proposed through Raft and applied by
the real applier (`kv.server.applied.txn`). The checker's `kv.linearizability.txn.StoreModel`
says both puts land together, at one revision, exactly when the compare holds; its partition
keeps the keys a txn ties together in one part. A failing seed names its run; replay it with
`run_workload` and the same `Workload`.
"""

from __future__ import annotations

import pytest

from kv.linearizability import Outcome
from kv.linearizability.txn import StoreModel, Txn, TxnResult
from kv.sim.workload import Workload, WorkloadRun, faults_for, run_workload

WORKLOAD = Workload(read_ratio=0.3, delete_ratio=0.1, txn_ratio=0.35)
REVISIONS = StoreModel(check_revisions=True)


def run_and_check(seed: int, size: int = 3) -> WorkloadRun:
    faults = faults_for(seed, size, WORKLOAD.duration_ms)
    run = run_workload(seed, size=size, workload=WORKLOAD, faults=faults)
    by_values = run.check()
    assert by_values.linearizable, f"seed={seed} {run.describe()}\n{by_values}"
    with_revisions = run.check(REVISIONS, max_steps=2_000_000)
    assert with_revisions.outcome is not Outcome.NOT_LINEARIZABLE, (
        f"seed={seed} {run.describe()}\n{with_revisions}"
    )
    return run


@pytest.mark.parametrize("seed", range(40))
def test_multi_key_txns_under_random_faults_are_linearizable(seed: int) -> None:
    run_and_check(seed)


def test_the_workload_sends_txns_that_succeed_and_fail() -> None:
    outputs = [
        op.output
        for seed in range(3)
        for op in run_and_check(seed).ops
        if isinstance(op.input, Txn) and isinstance(op.output, TxnResult)
    ]
    assert {output.succeeded for output in outputs} == {True, False}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_300))
def test_soak_multi_key_txns_under_random_faults(seed: int) -> None:
    run_and_check(seed)
