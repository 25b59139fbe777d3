"""Compare-and-set txns in the simulator, under random faults, checked for linearizability.

Chapter 4's workloads, with a third of the writes replaced by a one-key Txn: ``if value(k) ==
v then put(k, w)`` (``create_revision(k) == 0`` when the client expects no key), proposed
through Raft as an ``InternalRaftRequest`` holding the `TxnRequest` and applied by the real
applier (`kv.server.applied.txn`). The checker's model (`kv.linearizability.CompareAndSet`)
says a CAS succeeds exactly when the key holds the expected value at its linearization point,
and that a failed one takes no revision. A failing seed names its run; replay it with
`run_workload` and the same `Workload`.
"""

from __future__ import annotations

import pytest

from kv.linearizability import CompareAndSet, CompareAndSetResult, KeyValueModel
from kv.sim.clients.workload import Workload, WorkloadRun
from tests import sim_workloads

WORKLOAD = Workload(read_ratio=0.3, delete_ratio=0.1, cas_ratio=0.4)
REVISIONS = KeyValueModel(check_revisions=True)


def run_and_check(seed: int) -> WorkloadRun:
    return sim_workloads.run_and_check(seed, WORKLOAD, REVISIONS)


@pytest.mark.parametrize("seed", range(40))
def test_compare_and_set_under_random_faults_is_linearizable(seed: int) -> None:
    run_and_check(seed)


def test_the_workload_sends_compare_and_sets_that_succeed_and_fail() -> None:
    outputs = [
        op.output
        for seed in range(3)
        for op in run_and_check(seed).ops
        if isinstance(op.input, CompareAndSet) and isinstance(op.output, CompareAndSetResult)
    ]
    assert {output.succeeded for output in outputs} == {True, False}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_500))
def test_soak_compare_and_set_under_random_faults(seed: int) -> None:
    run_and_check(seed)
