"""Crashes and restarts on the simulated cluster: what was persisted survives, nothing else.

A simulated member persists exactly as a real one must (`kv.sim.node`): a Ready's hard
state, entries and snapshot are on disk only once its (virtual) write finishes; a crash
before that loses them, and a restart reads nothing but the disk. Raft's promise is that
this is enough: whatever and whenever we crash, no committed entry is ever lost, and the
cluster converges once the members are back. Failure messages carry the seed and scenario.
"""

from __future__ import annotations

import random

import pytest

from kv.linearizability import KeyValueModel, Put, check
from kv.sim import Cluster, Crash, NodeCrashed, OpState, Restart, RestartAll, Scenario, SimConfig
from kv.sim.clients.workload import Workload, run_workload
from kv.sim.faults.scenario import Fault

ELECTION_MS = 1_000
#: Slow disks widen the window between "taken from Ready" and "persisted".
SLOW_DISK = SimConfig(disk_ms=(1, 15))


def test_a_crash_while_a_ready_is_written_loses_its_entries() -> None:
    cluster = Cluster.create(3, seed=1, config=SimConfig(disk_ms=(1, 15), torn_writes=False))
    leader = cluster.elect_leader()
    cluster.run_for(ELECTION_MS)
    last = cluster.nodes[leader].storage.last_index()
    cluster.client(leader).put("k", "v")
    node = cluster.nodes[leader]
    assert cluster.run_until(lambda c: node.writing is not None and node.writing.entries, 500)
    cluster.crash(leader)
    crashed = cluster.events[-1].event
    assert isinstance(crashed, NodeCrashed) and crashed.lost_entries == 1, crashed
    assert node.storage.last_index() == last, "the entry never reached the disk"
    cluster.restart(leader)
    assert node.last_index == last, "and the restarted member does not have it"


@pytest.mark.parametrize("seed", range(10))
def test_a_torn_write_keeps_a_prefix_of_the_entries_and_the_hard_state_only_after_them(
    seed: int,
) -> None:
    """etcd's WAL writes a Ready's entries, then its hard state; a crash mid-write keeps a
    prefix of those records (the torn tail is cut off at restart)."""
    cluster = Cluster.create(3, seed=seed, config=SimConfig(disk_ms=(5, 15)))
    leader = cluster.elect_leader()
    follower = next(i for i in cluster.ids if i != leader)
    node = cluster.nodes[follower]
    for i in range(3):
        cluster.client(leader).put(f"k{i}", "v")
    assert cluster.run_until(
        lambda c: node.writing is not None and len(node.writing.entries) >= 2, 1_000
    ), cluster.describe()
    writing = node.writing
    assert writing is not None
    before = node.storage.last_index()
    cluster.crash(follower)
    crashed = cluster.events[-1].event
    assert isinstance(crashed, NodeCrashed), crashed
    kept = writing.entries[: crashed.torn_entries]
    assert node.storage.last_index() == (kept[-1].index if kept else before)
    if writing.hard_state is not None and crashed.torn_entries < len(writing.entries):
        assert node.storage.hard_state != writing.hard_state
    cluster.restart(follower)
    assert cluster.run_until(Cluster.converged, 3 * ELECTION_MS), cluster.describe()


@pytest.mark.parametrize("seed", range(5))
def test_a_restarted_member_rebuilds_its_store_by_replaying_its_log(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    client = cluster.client(leader)
    for i in range(5):
        assert cluster.complete(client.put(f"k{i}", f"v{i}")).state is OpState.OK
    follower = next(i for i in cluster.ids if i != leader)
    assert cluster.run_until(lambda c: c.nodes[follower].get("k4") == "v4", ELECTION_MS)
    cluster.crash(follower)
    assert cluster.nodes[follower].store is None
    cluster.restart(follower)
    assert cluster.run_until(Cluster.converged, 2 * ELECTION_MS), cluster.describe()
    assert [cluster.nodes[follower].get(f"k{i}") for i in range(5)] == [f"v{i}" for i in range(5)]


@pytest.mark.parametrize("seed", range(5))
def test_the_whole_cluster_crashing_at_once_loses_no_acknowledged_write(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed, config=SLOW_DISK)
    cluster.elect_leader()
    ops = [cluster.client().put(f"k{i}", f"v{i}") for i in range(6)]
    cluster.run_for(random.Random(seed).randint(5, 60))  # some answered, some not
    for node in cluster.ids:
        cluster.crash(node)
    answered = [op for op in ops if op.state is OpState.OK]
    for node in cluster.ids:
        cluster.restart(node)
    assert cluster.run_until(Cluster.converged, 5 * ELECTION_MS), cluster.describe()
    for op in answered:
        assert isinstance(op.input, Put)
        key, value = op.input.key, op.input.value
        assert all(n.get(str(key)) == value for n in cluster.nodes.values()), cluster.describe()


def crash_schedule(seed: int, ids: list[int], duration_ms: int) -> Scenario:
    """Crash any member at any time -- the leader, a follower, several at once, all of them
    -- and bring each back after a while; at the end, everyone restarts."""
    rng = random.Random(f"{seed}/crashes")
    steps: list[tuple[int, Fault]] = []
    time = 0
    while True:
        time += rng.randint(20, 500)
        if time >= duration_ms:
            break
        node = rng.choice(ids)
        steps.append((time, Crash(node)))
        steps.append((time + rng.randint(10, 1_500), Restart(node)))
    steps.append((duration_ms + 1_500, RestartAll()))
    return Scenario.of(*steps)


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("seed", range(15))
def test_crashing_any_member_at_any_time_loses_no_committed_entry(seed: int, size: int) -> None:
    workload = Workload(clients=4, duration_ms=3_000)
    faults = crash_schedule(seed, list(range(1, size + 1)), workload.duration_ms)
    run = run_workload(seed, size=size, workload=workload, config=SLOW_DISK, faults=faults)
    cluster = run.cluster
    # Converged (run_workload waited for it): every member holds the same log. Every entry
    # that was ever committed anywhere must be in it, at its index.
    log = {entry.index: entry for entry in cluster.nodes[1].log}
    lost = [i for i, entry in cluster.monitor.committed.items() if log.get(i) != entry]
    assert not lost, f"committed entries lost: {lost} [{run.describe()}]"
    result = check(KeyValueModel(), run.history)
    assert result.linearizable, f"seed={seed} {run.describe()}\n{result}"
