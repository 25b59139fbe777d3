"""Watch streams over seeded simulations with faults, checked as etcd's robustness tests do.

Each seed is one run (`kv.sim.clients.workload.run_workload`) of clients writing three keys under
the seed's random faults (partitions, crashes, lost and reordered messages, leadership
transfers), while simulated watchers (`kv.sim.clients.watchers`) watch on members drawn from the
seed: one key from revision 1 with prev_kv, a prefix from the next write, a range from a key
on with deletes only, one key from a future revision with puts only. A watcher whose member
crashes resumes from its last revision + 1 on another member (or the same one, back); a
watcher whose history was compacted starts over at the compaction revision, as etcd's client does.

Once the cluster converged and every watcher caught up, each watch is checked against the
cluster's applied history with ``tests/watchcheck.py``: ordered, unique, atomic, reliable,
resumable, prev_kv correct. Two kinds of runs: MVCC compactions proposed through the leader
during the run (the history is the log replayed on a fresh state machine, compactions
left out), and frequent Raft snapshots, so followers install a leader's snapshot under their
watchers (`kv.watch.WatchHub.restore`). The normal suite runs 100 + 30 seeds; ``pytest -m
slow`` soaks 2,000 + 500 more. A failing seed's message names it and its scenario.
"""

from __future__ import annotations

import random

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.mvcc import Store
from kv.raft import EntryType
from kv.server.applied.state_machine import StateMachine
from kv.sim import Cluster, SimConfig
from kv.sim.clients.watchers import Watching
from kv.sim.clients.workload import Workload, WorkloadRun, faults_for, run_workload
from kv.sim.node import decode_request
from kv.watch import FROM_KEY, Event, Filter, WatchRequest
from tests.watchcheck import ObservedWatch, check_watch, history_of

WORKLOAD = Workload(readers=0, read_ratio=0.2, delete_ratio=0.2)
REQUESTS = (
    WatchRequest(b"k0", start_revision=1, prev_kv=True),
    WatchRequest(b"k", b"l"),
    WatchRequest(b"k1", FROM_KEY, filters=frozenset({Filter.NOPUT}), prev_kv=True),
    WatchRequest(b"k2", start_revision=20, filters=frozenset({Filter.NODELETE})),
)
#: When compactions are proposed (ms after the clients start), and how far behind the
#: leader's revision: close enough that watchers behind a crash find their history gone.
COMPACT_AT = tuple(range(500, 4_000, 500))
COMPACT_BEHIND = 1
SNAPSHOTS = SimConfig(snapshot_every=3, snapshot_keep=1)


def compact(cluster: Cluster) -> None:
    """Propose a compaction at a few revisions behind the leader's (if there is a leader)."""
    leader = cluster.leader()
    if leader is None:
        return
    node = cluster.nodes[leader]
    store = node.store
    assert store is not None
    revision = store.current_revision - COMPACT_BEHIND
    if revision > store.compact_revision:
        request = InternalRaftRequest(compaction=rpc_pb2.CompactionRequest(revision=revision))
        node.propose(node.next_request_id(), request)


def replayed_history(cluster: Cluster) -> list[Event]:
    """The cluster's applied history: a member's log applied to a fresh state machine,
    compactions left out (the log is whole: these runs take no Raft snapshot)."""
    node = cluster.nodes[cluster.ids[0]]
    machine = StateMachine(Store())
    for entry in node.log:
        if entry.type is EntryType.NORMAL and entry.data and entry.index <= node.applied:
            request = decode_request(entry.data)
            if not request.HasField("compaction"):
                machine.apply(entry.index, request)
    return history_of(machine.store)


def run_watched(seed: int, *, compactions: bool) -> tuple[WorkloadRun, Watching]:
    """Run the seed's workload and faults with watchers, until every watcher caught up."""
    watching: list[Watching] = []

    def start(cluster: Cluster) -> None:
        watching.append(Watching(cluster, random.Random(f"{seed}/watchers")))
        watching[0].watch(REQUESTS)
        if compactions:
            for after in COMPACT_AT:
                cluster.at(cluster.now + after, compact)

    faults = faults_for(seed, 3, WORKLOAD.duration_ms)
    config = None if compactions else SNAPSHOTS
    run = run_workload(seed, workload=WORKLOAD, config=config, faults=faults, on_start=start)
    cluster, watchers = run.cluster, watching[0]
    store = cluster.nodes[cluster.ids[0]].store
    assert store is not None
    revision = store.current_revision
    assert cluster.run_until(lambda c: watchers.synced_to(revision), 10_000), (
        f"seed={seed}: the watchers did not catch up with revision {revision} [{run.describe()}]"
    )
    return run, watchers


def check_watched(seed: int, *, compactions: bool) -> None:
    run, watching = run_watched(seed, compactions=compactions)
    cluster = run.cluster
    if compactions:
        history = replayed_history(cluster)
    else:
        store = cluster.nodes[cluster.ids[0]].store
        assert store is not None
        history = history_of(store)
    compacted = max(
        (node.store.compact_revision for node in cluster.nodes.values() if node.store), default=-1
    )
    for watcher in watching.watchers:
        for segment in watcher.segments:
            problems = check_watch(
                ObservedWatch(segment.request, segment.replies), history, compacted=compacted
            )
            assert not problems, f"seed={seed} {watcher.describe()}: {problems} [{run.describe()}]"


@pytest.mark.parametrize("seed", range(100))
def test_watchers_under_faults_and_compactions_see_the_history(seed: int) -> None:
    check_watched(seed, compactions=True)


@pytest.mark.parametrize("seed", range(30))
def test_watchers_under_faults_and_snapshots_see_the_history(seed: int) -> None:
    check_watched(seed, compactions=False)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 3_000))
def test_soak_watchers_under_faults_and_compactions(seed: int) -> None:
    check_watched(seed, compactions=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1_000, 1_500))
def test_soak_watchers_under_faults_and_snapshots(seed: int) -> None:
    check_watched(seed, compactions=False)


def test_the_runs_resume_watchers_and_start_them_over_after_a_compaction() -> None:
    """Seed 14 (members crashed, compactions meanwhile) exercises both paths the checks
    cover: a watcher resumed on another member, and one that started over."""
    _, watching = run_watched(14, compactions=True)
    assert any(len(watcher.members) > len(watcher.segments) for watcher in watching.watchers)
    assert any(len(watcher.segments) > 1 for watcher in watching.watchers)
