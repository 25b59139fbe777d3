"""Leases in the simulator, under random faults, checked for linearizability.

Chapter 4's workloads with a third of the requests lease operations: grants with
client-chosen ids, puts attached to a recent lease (sometimes one already revoked) and
revokes, proposed through Raft and applied by the real state machine (the lessor of
`kv.server.applied.leases`, carried in the simulator's snapshots). The checker's
`kv.linearizability.leases.LeaseModel` says a revoke deletes every key attached to the lease
at one instant, and a put with a revoked lease writes nothing.

Leases granted here live 10 s, so most runs end before one expires; expiry under faults is
`test_sim_lease_expiry.py`'s. A failing seed names its run; replay it with `run_workload`.
"""

from __future__ import annotations

import pytest

from kv.linearizability.leases import (
    LeaseModel,
    LeasePut,
    LeasePutResult,
    LeaseRevoke,
    LeaseRevokeResult,
)
from kv.sim.clients.workload import Workload, WorkloadRun
from kv.sim.config import SimConfig
from tests import sim_workloads

WORKLOAD = Workload(read_ratio=0.3, delete_ratio=0.05, txn_ratio=0.1, lease_ratio=0.35)
REVISIONS = LeaseModel(check_revisions=True)


def run_and_check(seed: int, config: SimConfig | None = None) -> WorkloadRun:
    return sim_workloads.run_and_check(seed, WORKLOAD, REVISIONS, config=config)


@pytest.mark.parametrize("seed", range(40))
def test_leases_under_random_faults_are_linearizable(seed: int) -> None:
    run_and_check(seed)


def test_the_workload_revokes_leases_and_puts_with_revoked_ones() -> None:
    outputs = [op.output for seed in range(3) for op in run_and_check(seed).ops]
    attached = {o.attached for o in outputs if isinstance(o, LeasePutResult)}
    revoked = {o.revoked for o in outputs if isinstance(o, LeaseRevokeResult)}
    assert attached == {True, False} and True in revoked


def test_leases_survive_snapshots_and_their_keys_still_go_with_them() -> None:
    config = SimConfig(snapshot_every=20)
    for seed in range(5):
        run = run_and_check(seed, config=config)
        assert any(isinstance(op.input, (LeasePut, LeaseRevoke)) for op in run.ops)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_300))
def test_soak_leases_under_random_faults(seed: int) -> None:
    run_and_check(seed)
