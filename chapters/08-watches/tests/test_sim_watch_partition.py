"""A watch on a member cut off from the others, while the history it needs is compacted away.

A watcher watches the ``k`` prefix from revision 1, with prev_kv, on a follower
(`kv.sim.clients.watchers.SimWatcher`). That follower is partitioned away; meanwhile the other two
write on, and the leader compacts its MVCC history past the watcher's revision. When the
partition heals, how the follower catches up decides what the watcher gets:

* **by the leader's snapshot** (the leader compacted its Raft log too): the follower's store
  is replaced, its watchers read on from the new store's history, and the history they
  need is gone: the watch is cancelled with ``compact_revision`` (etcd: ``chooseAll``), and
  the client starts over from that revision, as etcd's client does;
* by the same snapshot **without an MVCC compaction**: the watcher catches up from the new
  store's history and misses nothing;
* **by log entries**: the follower applies the writes one by one before the compaction
  entry, so its synced watcher sees every event, compaction or not.

Each watch the client saw is checked as etcd's robustness tests do (`tests/watchcheck.py`):
ordered, unique, atomic, reliable, resumable, prev_kv correct. A failure names its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.sim import Cluster, SimConfig
from kv.sim.clients.watchers import SimWatcher, Watching
from kv.watch import Event, WatchRequest
from tests.watchcheck import ObservedWatch, check_watch, history_of

REQUEST = WatchRequest(b"k", b"l", start_revision=1, prev_kv=True)
#: Raft snapshots every few entries, keeping one: a member back from a partition is sent
#: the leader's snapshot, not the entries it missed.
SNAPSHOTS = SimConfig(snapshot_every=3, snapshot_keep=1)


def write(cluster: Cluster, endpoints: list[int], count: int, prefix: str) -> None:
    client = cluster.client(endpoints)
    for i in range(count):
        op = cluster.complete(client.put(f"k{i % 3}", f"{prefix}{i}"))
        assert op.output is not None, f"{op} [{cluster.describe()}]"


@dataclass(slots=True)
class Outcome:
    cluster: Cluster
    watcher: SimWatcher
    #: Every event of the run, taken once the writes were done, before any compaction.
    history: list[Event]
    #: The revision the leader compacted at (0: none).
    compacted: int

    def check(self, seed: int) -> None:
        """Every watch the client saw, checked against the whole history."""
        cluster, watcher = self.cluster, self.watcher
        compacted = max(
            node.store.compact_revision for node in cluster.nodes.values() if node.store
        )
        for segment in watcher.segments:
            observed = ObservedWatch(segment.request, segment.replies)
            problems = check_watch(observed, self.history, compacted=compacted)
            replay = f"seed={seed} {watcher.describe()}"
            assert not problems, f"{replay}: {problems} [{cluster.describe()}]"


def run(seed: int, *, snapshots: bool, compact: bool) -> Outcome:
    """The scenario of the module docstring, until the watcher caught up after the heal."""
    cluster = Cluster.create(3, seed=seed, config=SNAPSHOTS if snapshots else None)
    leader = cluster.elect_leader()
    away = next(n for n in cluster.ids if n != leader)
    watching = Watching(cluster, random.Random(f"{seed}/watchers"))
    watcher = SimWatcher(REQUEST)
    watching.watchers.append(watcher)
    watcher.connect(cluster, away)
    write(cluster, cluster.ids, 4, "before-")
    cluster.run_for(300)  # the watcher reads what it was sent
    cluster.isolate(away)
    others = [n for n in cluster.ids if n != away]
    write(cluster, others, 10, "while-away-")
    leader = cluster.elect_leader()
    store = cluster.nodes[leader].store
    assert store is not None
    history = history_of(store)
    compacted = compact_on(cluster, leader) if compact else 0
    cluster.run_for(500)
    cluster.heal()
    revision = store.current_revision
    caught_up = cluster.run_until(lambda c: watching.synced_to(revision), 10_000)
    assert caught_up, f"seed={seed}: the watcher never caught up [{cluster.describe()}]"
    return Outcome(cluster, watcher, history, compacted)


def compact_on(cluster: Cluster, leader: int) -> int:
    """Compact the MVCC history up to the leader's revision, through the log; wait until the
    leader applied it."""
    node = cluster.nodes[leader]
    store = node.store
    assert store is not None
    revision = store.current_revision
    request = InternalRaftRequest(compaction=rpc_pb2.CompactionRequest(revision=revision))
    assert node.propose(node.next_request_id(), request) is None
    compacted = cluster.run_until(lambda c: store.compact_revision == revision, 2_000)
    assert compacted, f"the compaction at {revision} was not applied [{cluster.describe()}]"
    return revision


SEEDS = range(10)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_watcher_back_from_a_partition_past_a_compaction_is_cancelled_at_compact_revision(
    seed: int,
) -> None:
    outcome = run(seed, snapshots=True, compact=True)
    replay = f"seed={seed} {outcome.watcher.describe()} [{outcome.cluster.describe()}]"
    first, *rest = outcome.watcher.segments
    assert rest, f"{replay}: never cancelled"
    # The client started over at the compact_revision it was told (`SimWatcher.read`).
    assert rest[0].request.start_revision == outcome.compacted, replay
    assert first.replies, replay  # it saw the writes made before the partition
    outcome.check(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_watcher_back_from_a_partition_catches_up_from_the_snapshots_history(seed: int) -> None:
    outcome = run(seed, snapshots=True, compact=False)
    [segment] = outcome.watcher.segments
    seen = {event.revision for reply in segment.replies for event in reply.events}
    assert seen == {event.revision for event in outcome.history}, outcome.cluster.describe()
    outcome.check(seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("compact", [False, True])
def test_a_watcher_back_from_a_partition_sees_every_write_its_member_replays(
    seed: int, compact: bool
) -> None:
    """Without Raft snapshots the member applies the missed writes before the compaction
    entry, so its synced watcher is never behind a compacted history."""
    outcome = run(seed, snapshots=False, compact=compact)
    [segment] = outcome.watcher.segments
    seen = {event.revision for reply in segment.replies for event in reply.events}
    assert seen == {event.revision for event in outcome.history}, outcome.cluster.describe()
    outcome.check(seed)
