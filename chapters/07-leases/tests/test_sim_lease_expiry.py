"""Leases expiring in the simulator: the leader's clock across leader changes and faults.

The simulated members run the real server's expiry steps (`kv.lease.expiry`, driven by
`kv.sim.leases.expiry`): the leader finds the leases past their deadline, confirms its leadership
with a ReadIndex round, and proposes the revoke; a new leader extends every lease by an
election timeout when it applies its term's first entry. Clients keep leases alive through
any member (`kv.sim.leases.keepalive`), which forwards to the leader. While the run goes,
`kv.sim.leases.safety.LeaseMonitor` raises the moment a lease is revoked within its TTL of a
keep-alive or grant that succeeded.

The scenarios: a leader cut off just before a lease's deadline must not revoke the lease the
new leader keeps alive (etcd bug #15247: without the check, it does, and the monitor says
so); a lease left to lapse across a leader change goes no earlier than an election timeout +
its TTL after the new leader's term began. Then a sweep of seeded faulty runs where some
leases are kept alive and the others lapse: linearizable (each expiry is a ``LeaseRevoke``
in the history), never revoked early, and every lease gone once nobody keeps it. A failing
seed's message names the run to replay.
"""

from __future__ import annotations

import pytest

from kv.linearizability.leases import LeaseGrant, LeaseGrantResult, LeaseModel
from kv.raft import events as ev
from kv.sim import Cluster, SafetyViolation
from kv.sim.clients.client import ClientOp
from kv.sim.clients.workload import Workload, WorkloadRun, faults_for, run_workload
from kv.sim.leases.safety import unexpired
from kv.sim.timeline.events import LeaseEvent
from tests import sim_workloads

LEASE = 7
TTL = 2  # the shortest TTL the simulator's timing grants (1.5 election timeouts, rounded up)


def granted_lease(cluster: Cluster, ttl: int = TTL) -> tuple[int, float]:
    """Elect a leader, grant `LEASE` through it and put a key with it; return the leader and
    the lease's deadline on its clock (seconds)."""
    leader = cluster.elect_leader()
    client = cluster.client([leader])
    assert cluster.complete(client.lease_grant(LEASE, ttl)).output == LeaseGrantResult(True, 1)
    assert cluster.complete(client.lease_put("held", "v", LEASE)).output is not None
    lease = cluster.nodes[leader].lessor().lookup(LEASE)
    assert lease is not None and lease.expiry is not None, cluster.describe()
    return leader, lease.expiry


def lease_events(cluster: Cluster, node: int) -> list[str]:
    return [
        event.event.what
        for event in cluster.events
        if isinstance(event.event, LeaseEvent) and event.event.node == node
    ]


# -- a deposed leader does not revoke (etcd #15247) -------------------------------------------


def deposed_leader(seed: int, *, confirm_leadership: bool) -> tuple[Cluster, int]:
    """The leader holding `LEASE` is cut off 300 ms before its deadline; from then on a
    client keeps the lease alive through the other two members (so through the new leader);
    the partition heals two seconds after the deadline, while the old leader's revoke still
    waits for its ReadIndex round."""
    cluster = Cluster.create(3, seed=seed)
    cluster.expiry.confirm_leadership = confirm_leadership
    old, deadline = granted_lease(cluster)
    cluster.run_for(round(deadline * 1000) - 300 - cluster.now)
    cluster.isolate(old)
    others = [n for n in cluster.ids if n != old]
    cluster.keepalives.keep(LEASE, others, every_ms=600)
    cluster.run_for(2_300)
    cluster.heal()
    cluster.run_for(5_000)
    return cluster, old


@pytest.mark.parametrize("seed", range(5))
def test_a_deposed_leader_does_not_revoke_the_lease_the_new_leader_keeps_alive(seed: int) -> None:
    cluster, old = deposed_leader(seed, confirm_leadership=True)
    replay = f"seed={seed} [{cluster.describe()}]"
    what = lease_events(cluster, old)
    assert what[0].startswith("expired: confirming leadership"), f"{replay}: {what}"
    assert what[-1].startswith(f"not revoked: n{old} no longer leads"), f"{replay}: {what}"
    assert not cluster.expiry.revokes, replay
    assert all(cluster.nodes[n].get("held") == "v" for n in cluster.ids), replay
    assert cluster.keepalives.keepers[0].ops[-1].renewed, replay


@pytest.mark.parametrize("seed", range(5))
def test_without_the_leadership_check_the_deposed_leader_revokes_it_early(seed: int) -> None:
    """What etcd did before its fix: the old leader's round is answered through the new
    leader once the partition heals, and its revoke, forwarded there, is committed."""
    with pytest.raises(SafetyViolation, match=f"lease {LEASE} revoked early"):
        deposed_leader(seed, confirm_leadership=False)


# -- a lapsed lease across a leader change ------------------------------------------------------


def lapsed_across_a_leader_change(seed: int, ttl: int) -> tuple[Cluster, int, int]:
    """Nobody keeps `LEASE` alive, and its leader crashes 200 ms after granting it. Returns
    the cluster once the lease is revoked, the new leader, and when its term began (ms)."""
    cluster = Cluster.create(3, seed=seed)
    old, _ = granted_lease(cluster, ttl)
    cluster.run_for(200)
    cluster.crash(old)
    new = cluster.elect_leader()
    began = max(
        event.time
        for event in cluster.events
        if isinstance(event.event, ev.BecameLeader) and event.event.node == new
    )
    gone = cluster.run_until(lambda c: c.nodes[new].get("held") is None, 20_000)
    assert gone, f"seed={seed}: lease {LEASE} never revoked [{cluster.describe()}]"
    return cluster, new, began


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ttl", [2, 5])
def test_the_new_leader_revokes_a_lapsed_lease_an_election_timeout_plus_ttl_after_its_term_began(
    seed: int, ttl: int
) -> None:
    cluster, new, began = lapsed_across_a_leader_change(seed, ttl)
    replay = f"seed={seed} ttl={ttl} [{cluster.describe()}]"
    [revoke] = cluster.expiry.revokes
    assert (revoke.node, revoke.term) == (new, cluster.nodes[new].term), replay
    earliest = began + cluster.config.election_timeout_ms + ttl * 1000
    # At the latest: a check interval (500 ms), a tick, and the round and commit after that.
    assert earliest <= revoke.proposed_at <= earliest + 1_000, f"{replay}: {revoke}"


def test_a_lease_kept_alive_outlives_its_ttl_and_lapses_once_the_keeper_stops() -> None:
    cluster = Cluster.create(3, seed=1)
    granted_lease(cluster)
    keeper = cluster.keepalives.keep(LEASE, every_ms=600)
    cluster.run_for(5 * TTL * 1000)
    assert cluster.nodes[cluster.ids[0]].get("held") == "v", cluster.describe()
    keeper.stop()
    assert cluster.run_until(lambda c: c.nodes[c.ids[0]].get("held") is None, 5_000)
    assert not cluster.expiry.revokes[0].proposed_at < keeper.ops[-1].call_time + TTL * 1000


# -- the sweep ------------------------------------------------------------------------------------

SWEEP = Workload(
    clients=3, readers=1, keys=2, duration_ms=3_000, read_ratio=0.3, lease_ratio=0.4, lease_ttl=2
)
REVISIONS = LeaseModel(check_revisions=True)
#: Keep-alives start this often for the leases granted so far (every other one is kept).
KEEPER_POLL_MS = 200


class Keepers:
    """Keep every even lease alive from its grant to the end of the workload."""

    def __init__(self, cluster: Cluster, until: int) -> None:
        self.until = until
        self.kept: set[int] = set()
        cluster.at(cluster.now, self.poll)

    def poll(self, cluster: Cluster) -> None:
        for op in cluster.ops:
            lease = _granted(op)
            if lease is not None and lease % 2 == 0 and lease not in self.kept:
                self.kept.add(lease)
                cluster.keepalives.keep(lease, every_ms=600, until=self.until)
        if cluster.now < self.until:
            cluster.at(cluster.now + KEEPER_POLL_MS, self.poll)


def _granted(op: ClientOp) -> int | None:
    granted = isinstance(op.output, LeaseGrantResult) and op.output.granted
    if isinstance(op.input, LeaseGrant) and granted:
        return op.input.id
    return None


def run_expiring(seed: int) -> WorkloadRun:
    """The seed's faulty run with leases kept alive and lapsing; then every lease must go."""
    keepers: list[Keepers] = []
    faults = faults_for(seed, 3, SWEEP.duration_ms)

    def start(cluster: Cluster) -> None:
        keepers.append(Keepers(cluster, cluster.now + SWEEP.duration_ms))

    try:
        run = run_workload(seed, workload=SWEEP, faults=faults, on_start=start)
    except SafetyViolation as violation:
        raise AssertionError(f"seed={seed}: {violation}") from None
    cluster = run.cluster
    sim_workloads.assert_linearizable(run, REVISIONS, f"seed={seed} {run.describe()}")
    settled = cluster.run_until(lambda c: not any(len(c.nodes[n].lessor()) for n in c.up()), 20_000)
    assert settled and not unexpired(cluster), (
        f"seed={seed}: leases left once nobody kept them: "
        f"{[lease.id for lease in cluster.nodes[cluster.ids[0]].lessor()]} [{run.describe()}]"
    )
    return run


@pytest.mark.parametrize("seed", range(100))
def test_leases_expire_under_random_faults_never_early_and_linearizably(seed: int) -> None:
    run_expiring(seed)


def test_the_sweep_expires_leases_and_keeps_some_alive_across_faults() -> None:
    runs = [run_expiring(seed) for seed in range(5)]
    assert sum(len(run.cluster.expiry.revokes) for run in runs) > 5
    assert any(op.renewed for run in runs for op in run.cluster.keepalives.ops)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 3_000))
def test_soak_leases_expire_under_random_faults(seed: int) -> None:
    run_expiring(seed)
