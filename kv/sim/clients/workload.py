"""Random client workloads: run one on a simulated cluster by seed, and check it.

A `Workload` says how many clients there are, which keys they touch and for how long; each
client sends one request at a time -- a get, put or delete of a random key, with a value no
one else writes -- thinks for a moment, and sends the next. `run_workload` runs it on a new
cluster (with a fault scenario, if asked), waits until every request is answered or given up
on, and returns the `WorkloadRun`: the cluster as it ended, and the history for
`kv.linearizability.check`.

Everything is drawn from the seed, so ``run_workload(seed, ...)`` is a replay:
``python -m kv.sim --seed 17 --faults`` runs the same seed from the command line and prints
its events, history and verdict.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kv.linearizability import CheckResult, KeyValueModel, Model, Operation, check
from kv.linearizability.leases import LeaseModel
from kv.linearizability.txn import Compare, Target, Txn, TxnDelete, TxnOp, TxnPut
from kv.sim.clients.client import Client, ClientOp
from kv.sim.config import SimConfig
from kv.sim.faults.scenario import Scenario, random_scenario
from kv.sim.timeline.cluster import Cluster


@dataclass(frozen=True, slots=True)
class Workload:
    """What the clients do."""

    clients: int = 5
    #: Clients that only read, on top of ``clients`` (a reader stuck on a member cut off
    #: from the others keeps asking it, which is how stale reads get caught).
    readers: int = 2
    keys: int = 3
    #: Clients start requests during this long (from the first leader's election).
    duration_ms: int = 4_000
    #: A client's pause between an answer and its next request (drawn, inclusive).
    think_ms: tuple[int, int] = (0, 40)
    read_ratio: float = 0.5
    delete_ratio: float = 0.1
    #: Compare-and-set txns (chapter 6), expecting the key's latest value put or absent.
    cas_ratio: float = 0.0
    #: Multi-key txns (chapter 6): compare one key's value, put two keys or delete one.
    txn_ratio: float = 0.0
    #: Lease operations (chapter 7): grants, puts with a lease, revokes (a third each).
    lease_ratio: float = 0.0
    #: The TTL of the leases granted, in seconds. Nobody keeps them alive here: the leader
    #: revokes those still there when their TTL runs out (`kv.sim.leases.expiry`), and the history
    #: records each such revoke.
    lease_ttl: int = 10

    def __str__(self) -> str:
        return (
            f"{self.clients} clients + {self.readers} readers, {self.keys} keys, "
            f"{self.duration_ms}ms, {self.read_ratio:.0%} reads, {self.delete_ratio:.0%} deletes"
            + (f", {self.cas_ratio:.0%} compare-and-sets" if self.cas_ratio else "")
            + (f", {self.txn_ratio:.0%} txns" if self.txn_ratio else "")
            + (f", {self.lease_ratio:.0%} lease operations" if self.lease_ratio else "")
        )

    @property
    def model(self) -> KeyValueModel | LeaseModel:
        """The model that covers what the clients send (values only)."""
        return LeaseModel() if self.txn_ratio or self.lease_ratio else KeyValueModel()


@dataclass(slots=True)
class WorkloadRun:
    """A finished run: the cluster as it ended, and what its clients recorded."""

    seed: int
    cluster: Cluster
    workload: Workload
    #: When the clients started (the first leader was elected).
    started_at: int

    @property
    def ops(self) -> list[ClientOp]:
        return self.cluster.ops

    @property
    def history(self) -> list[Operation[Any, Any]]:
        return self.cluster.history

    def check(
        self, model: Model[Any, Any, Any] | None = None, max_steps: int | None = None
    ) -> CheckResult:
        """Is the history linearizable? (values only, unless given another model)"""
        chosen: Model[Any, Any, Any] = model or self.workload.model
        return check(chosen, self.history, max_steps=max_steps)

    def describe(self) -> str:
        """Everything needed to replay the run."""
        return f"{self.cluster.describe()} workload: {self.workload}"

    def summary(self) -> str:
        """Counts of the operations by outcome."""
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.state.value] = counts.get(op.state.value, 0) + 1
        return ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def faults_for(seed: int, size: int, duration_ms: int, **options: bool) -> Scenario:
    """The random fault scenario of a seed (`kv.sim.faults.scenario.random_scenario`): faults during
    ``duration_ms``, then everything healed and restarted."""
    rng = random.Random(f"{seed}/faults")
    return random_scenario(rng, range(1, size + 1), duration_ms, **options)


def run_workload(
    seed: int,
    *,
    size: int = 3,
    workload: Workload | None = None,
    config: SimConfig | None = None,
    scenario: Scenario | None = None,
    faults: Scenario | None = None,
    converge: bool = True,
    on_start: Callable[[Cluster], None] | None = None,
) -> WorkloadRun:
    """Run ``workload`` on a new cluster of ``size``.

    ``scenario`` is scheduled from time 0 (the cluster's birth); ``faults``, from the moment
    the clients start (`faults_for` draws them for a seed).

    The clients start once a leader is elected and stop starting requests after
    ``workload.duration_ms``; the run ends when every request has finished (answered,
    refused everywhere, or timed out). With ``converge``, it then waits until the members
    agree on everything (the scenario must have healed and restarted them all by then).
    ``on_start`` is called with the cluster as the clients start (to add watchers, say).

    Raises:
        AssertionError: no first leader, or (with ``converge``) no convergence; the message
            holds the replay information.
        SafetyViolation: a Raft safety property broke during the run.
    """
    workload = workload or Workload()
    cluster = Cluster.create(size, seed=seed, config=config, scenario=scenario)
    election = 20 * cluster.config.election_timeout_ms
    assert cluster.run_until(lambda c: c.leader() is not None, election), (
        f"no leader within {election}ms [{cluster.describe()}]"
    )
    started_at = cluster.now
    if on_start is not None:
        on_start(cluster)
    for time, fault in (faults or Scenario()).steps:
        cluster.at(started_at + time, fault)
    stop_at = started_at + workload.duration_ms
    rng = random.Random(f"{seed}/workload")
    counters = [0] * (workload.clients + workload.readers + 1)
    leases = _LeaseRequests(rng, workload.lease_ttl)
    latest: dict[str, str] = {}  # the value last sent for each key (a CAS expects it)

    def next_request(client: Client) -> None:
        if cluster.now >= stop_at or client.busy:
            return
        key = f"k{rng.randrange(workload.keys)}"
        draw = rng.random()
        if client.id > workload.clients or draw < workload.read_ratio:
            client.get(key)
        elif draw < workload.read_ratio + workload.delete_ratio:
            client.delete(key)
        elif draw < workload.read_ratio + workload.delete_ratio + workload.cas_ratio:
            counters[client.id] += 1
            expected = latest.get(key) if rng.random() < 0.8 else None
            new = f"{client.id}-{counters[client.id]}"
            latest[key] = new
            client.compare_and_set(key, expected, new)
        elif draw >= 1 - workload.lease_ratio:  # (the top of the draw's range: with the
            # ratios at 0 these branches are never taken, and older seeds replay unchanged)
            counters[client.id] += 1
            leases.next_request(client, key, f"{client.id}-{counters[client.id]}")
        elif draw >= 1 - workload.lease_ratio - workload.txn_ratio:
            counters[client.id] += 1
            value = f"{client.id}-{counters[client.id]}"
            client.txn(_random_txn(rng, workload.keys, latest, value))
        else:
            counters[client.id] += 1
            latest[key] = f"{client.id}-{counters[client.id]}"
            client.put(key, latest[key])

    def after(client: Client) -> None:
        cluster.at(cluster.now + rng.randint(*workload.think_ms), lambda c: next_request(client))

    for _ in range(workload.clients + workload.readers):
        client = cluster.client()
        client.on_done = lambda op, client=client: after(client)
        after(client)

    limit = workload.duration_ms + cluster.config.request_timeout_ms + 1_000
    cluster.run_until(lambda c: c.now >= stop_at and not any(x.busy for x in c.clients), limit)
    assert not any(client.busy for client in cluster.clients), (
        f"requests still in flight at {cluster.now}ms [{cluster.describe()}]"
    )
    if converge:
        settle = 30 * cluster.config.election_timeout_ms
        assert cluster.run_until(lambda c: c.converged(), settle), (
            f"the members did not converge within {settle}ms [{cluster.describe()}]"
        )
    return WorkloadRun(seed, cluster, workload, started_at)


def _random_txn(rng: random.Random, keys: int, latest: dict[str, str], value: str) -> Txn:
    """``if value(a) == latest(a) then put(a), put(b) else delete(b)`` on two random keys
    (one key when there is only one): a swap that often succeeds, and often does not."""
    first, second = (f"k{k}" for k in rng.sample(range(keys), 2)) if keys > 1 else ("k0", "k0")
    expected = latest.get(first)
    compare = (
        Compare(first, Target.VALUE, expected)
        if expected is not None and rng.random() < 0.8
        else Compare(first, Target.VERSION, 0)
    )
    success: tuple[TxnOp, ...] = (TxnPut(first, value), TxnPut(second, value))
    if second == first:
        success = success[:1]
    latest[first] = value
    if second != first:
        latest[second] = value
    return Txn((compare,), success, (TxnDelete(second),))


class _LeaseRequests:
    """The workload's lease operations: grant a new lease, put with a lease, or revoke one
    (a lease revoked or never granted now and then, so that refusals are checked too)."""

    def __init__(self, rng: random.Random, ttl: int) -> None:
        self.rng = rng
        self.ttl = ttl
        self.granted: list[int] = []  # every id asked for, in order
        self.next_id = 1

    def next_request(self, client: Client, key: str, value: str) -> None:
        choice = self.rng.randrange(3)
        if choice == 0 or not self.granted:
            self.granted.append(self.next_id)
            client.lease_grant(self.next_id, self.ttl)
            self.next_id += 1
        elif choice == 1:
            client.lease_put(key, value, self.rng.choice(self.granted[-3:]))
        else:
            client.lease_revoke(self.rng.choice(self.granted[-4:]))
