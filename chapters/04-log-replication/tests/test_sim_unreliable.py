"""An unreliable network: lost, duplicated and reordered messages, and Figure 8 under it.

Raft assumes nothing of the network but that some messages eventually get through: its
messages are idempotent (a duplicated append is a no-op), carry their own context (a
reordered vote answer names its term), and are retried (appends and heartbeats repeat). The
simulator loses 10% of the messages, duplicates 5% and delays each by 1-150 ms (so they
overtake each other); the cluster must still agree on everything, serve linearizably, and
converge once the network behaves. Failure messages carry the seed and scenario.
"""

from __future__ import annotations

import random

import pytest

from kv.linearizability import KeyValueModel, check
from kv.sim import UNRELIABLE, Cluster, NetworkConfig, OpState, SimConfig
from kv.sim.clients.workload import Workload, run_workload

ELECTION_MS = 1_000
FAST_TICK_MS = 20


@pytest.mark.parametrize("seed", range(15))
def test_concurrent_puts_over_an_unreliable_network_still_agree(seed: int) -> None:
    cluster = Cluster.create(5, seed=seed, config=SimConfig(network=UNRELIABLE))
    cluster.elect_leader(limit_ms=10 * ELECTION_MS)
    ops = [cluster.client().put(f"k{i % 3}", f"v{i}") for i in range(10)]
    cluster.run_until(lambda c: all(op.done for op in ops), 5_000)
    assert cluster.run_until(Cluster.converged, 10 * ELECTION_MS), cluster.describe()
    for op in ops:  # an answered put is on every member (unless overwritten by a later put)
        assert op.state in (OpState.OK, OpState.TIMED_OUT, OpState.FAILED), str(op)
    result = check(KeyValueModel(), cluster.history)
    assert result.linearizable, f"{cluster.describe()}\n{result}"
    assert sum(op.state is OpState.OK for op in ops) >= 5, [str(op) for op in ops]


@pytest.mark.parametrize("seed", range(15))
def test_a_workload_over_an_unreliable_network_is_linearizable(seed: int) -> None:
    config = SimConfig(network=UNRELIABLE)
    run = run_workload(seed, workload=Workload(clients=4, duration_ms=3_000), config=config)
    result = run.check()
    assert result.linearizable, f"seed={seed} {run.describe()}\n{result}"
    assert run.cluster.network.dropped and run.cluster.network.duplicated, "it was unreliable"


def figure_8(seed: int, fault: str, unreliable: bool) -> Cluster:
    """6.824's Figure 8 tests on the simulator: five members, clients proposing through all
    of them, and leaders repeatedly cut off (or crashed) right after they accepted
    proposals, so that entries of old terms sit on some members -- sometimes a majority --
    without being committed; later leaders must overwrite them, never commit them by count
    (Raft §5.4.2). With ``unreliable``, messages are also lost, duplicated and, after a
    while, reordered across half an election timeout. At the end everything is repaired.

    The clock runs five times faster than etcd's (20 ms ticks, 200 ms election timeouts,
    1-5 ms messages), as in 6.824, so that a thousand rounds see dozens of leaders.
    """
    if unreliable:
        network = NetworkConfig(delay_ms=(1, 30), drop_rate=0.1, duplicate_rate=0.05)
    else:
        network = NetworkConfig(delay_ms=(1, 5))
    # One entry per append message: a new leader's followers take its log piece by piece,
    # so an old entry can sit on a majority before the leader's own entry does.
    config = SimConfig(
        tick_ms=FAST_TICK_MS, network=network, request_timeout_ms=500, max_size_per_msg=1
    )
    cluster = Cluster.create(5, seed=seed, config=config)
    rng = random.Random(f"{seed}/figure8")
    clients = [(node, cluster.client(node)) for node in cluster.ids for _ in range(3)]
    out: set[int] = set()  # cut off or crashed

    def apply_faults() -> None:
        if fault == "isolate":
            cluster.partition(*[{node} for node in sorted(out)])
            return
        for node in cluster.ids:
            if node in out and cluster.nodes[node].up:
                cluster.crash(node)
            elif node not in out and not cluster.nodes[node].up:
                cluster.restart(node)

    for iteration in range(1_000):
        if unreliable and iteration == 200:
            cluster.set_network(NetworkConfig(delay_ms=(1, 100), drop_rate=0.1))
        for node, client in clients:
            if not client.busy and node not in out:
                client.put(f"k{rng.randrange(3)}", f"{iteration}-{client.id}")
        if rng.random() < 0.1:
            cluster.run_for(rng.randint(1, 5 * FAST_TICK_MS))
        else:
            cluster.run_for(rng.randint(1, 13))
        before = set(out)
        leader = cluster.leader()
        if leader is not None and leader not in out and rng.random() < 0.5:
            out.add(leader)
        if len(out) > 2:  # fewer than three members in: bring one back
            out.discard(rng.choice(sorted(out)))
        if out != before:
            apply_faults()
    out.clear()
    apply_faults()
    cluster.heal()
    cluster.set_network(NetworkConfig(delay_ms=(1, 5)))
    return cluster


def commits_a_final_put(cluster: Cluster) -> bool:
    """Once repaired, the cluster commits a put within ten seconds (a try may be lost with
    a leader that was deposed; the client tries again)."""
    deadline = cluster.now + 10_000
    while cluster.now < deadline:
        if cluster.complete(cluster.client().put("final", "yes")).state is OpState.OK:
            return True
    return False


@pytest.mark.parametrize("fault", ["isolate", "crash"])
@pytest.mark.parametrize("seed", range(12))
def test_figure_8_leaders_come_and_go_and_committed_entries_stay(seed: int, fault: str) -> None:
    cluster = figure_8(seed, fault, unreliable=False)
    final = cluster.complete(cluster.client().put("final", "yes"), limit_ms=10_000)
    assert (
        final.state is OpState.OK
        or cluster.complete(cluster.client().put("final", "yes")).state is OpState.OK
    ), cluster.describe()
    assert cluster.run_until(Cluster.converged, 10 * ELECTION_MS), cluster.describe()
    result = check(KeyValueModel(), cluster.history)
    assert result.linearizable, f"{cluster.describe()}\n{result}"


@pytest.mark.parametrize("seed", range(6))
def test_figure_8_over_an_unreliable_network(seed: int) -> None:
    cluster = figure_8(seed, "isolate", unreliable=True)
    final = cluster.complete(cluster.client().put("final", "yes"), limit_ms=10_000)
    assert (
        final.state is OpState.OK
        or cluster.complete(cluster.client().put("final", "yes")).state is OpState.OK
    ), cluster.describe()
    assert cluster.run_until(Cluster.converged, 10 * ELECTION_MS), cluster.describe()
    result = check(KeyValueModel(), cluster.history)
    assert result.linearizable, f"{cluster.describe()}\n{result}"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["isolate", "crash"])
@pytest.mark.parametrize("seed", range(100, 400))
def test_soak_figure_8(seed: int, fault: str) -> None:
    cluster = figure_8(seed, fault, unreliable=fault == "isolate" and seed % 2 == 0)
    assert commits_a_final_put(cluster), cluster.describe()
    assert cluster.run_until(Cluster.converged, 10 * ELECTION_MS), cluster.describe()
    result = check(KeyValueModel(), cluster.history)
    assert result.linearizable, f"{cluster.describe()}\n{result}"
