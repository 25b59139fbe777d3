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

from kv.linearizability.txn import StoreModel, Txn, TxnResult
from kv.sim.clients.workload import Workload, WorkloadRun
from tests import sim_workloads

WORKLOAD = Workload(read_ratio=0.3, delete_ratio=0.1, txn_ratio=0.35)
REVISIONS = StoreModel(check_revisions=True)


def run_and_check(seed: int) -> WorkloadRun:
    return sim_workloads.run_and_check(seed, WORKLOAD, REVISIONS)


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
