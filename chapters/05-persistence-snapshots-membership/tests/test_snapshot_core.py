"""Snapshots in the Raft core (Raft §7): compaction, InstallSnapshot, and restarting from one.

A leader that compacted its log cannot bring a far-behind follower up to date entry by
entry; it sends its snapshot instead, and the follower replaces its log with it.
"""

from __future__ import annotations

import pytest

from kv.raft import (
    CompactedError,
    ConfState,
    Entry,
    MemoryStorage,
    MessageType,
    ProgressState,
    Snapshot,
    SnapshotMetadata,
    SnapshotOutOfDateError,
    UnavailableError,
)
from kv.raft.events import SnapshotRestored, SnapshotSent
from kv.raft.log import RaftLog
from kv.raft.progress import Progress
from tests.raftnet import (
    Network,
    decode_state,
    drain,
    encode_state,
    entries,
    message,
    new_node,
    of_type,
)

M = MessageType


def snapshot_at(index: int, term: int, voters: tuple[int, ...] = (1, 2, 3)) -> Snapshot:
    return Snapshot(
        data=encode_state([b"s%d" % i for i in range(index)]),
        metadata=SnapshotMetadata(conf_state=ConfState(voters=voters), index=index, term=term),
    )


# -- MemoryStorage ----------------------------------------------------------------------------


def test_memory_storage_compacts_behind_a_snapshot() -> None:
    storage = MemoryStorage.with_members([1])
    storage.append([Entry(1, i) for i in range(1, 6)])
    snapshot = storage.create_snapshot(3, data=b"state")
    storage.compact(3)
    assert (storage.first_index(), storage.last_index()) == (4, 5)
    assert storage.term(3) == 1
    assert snapshot.metadata == SnapshotMetadata(conf_state=ConfState(voters=(1,)), index=3, term=1)
    with pytest.raises(CompactedError):
        storage.entries(3, 5)
    with pytest.raises(CompactedError):
        storage.term(2)
    with pytest.raises(UnavailableError):
        storage.term(6)
    with pytest.raises(SnapshotOutOfDateError):
        storage.create_snapshot(2)
    assert [e.index for e in storage.entries(4, 6)] == [4, 5]


def test_memory_storage_applies_a_newer_snapshot_only() -> None:
    storage = MemoryStorage.with_members([1, 2, 3])
    storage.apply_snapshot(snapshot_at(10, 2))
    assert (storage.first_index(), storage.last_index(), storage.term(10)) == (11, 10, 2)
    with pytest.raises(SnapshotOutOfDateError):
        storage.apply_snapshot(snapshot_at(5, 1))


def test_memory_storage_appends_over_a_conflicting_tail_and_skips_compacted_entries() -> None:
    storage = MemoryStorage.with_members([1])
    storage.append([Entry(1, i) for i in range(1, 6)])
    storage.create_snapshot(2)
    storage.compact(2)
    storage.append([Entry(1, 2), Entry(3, 3), Entry(3, 4)])
    assert [(e.index, e.term) for e in storage.entries(3, 5)] == [(3, 3), (4, 3)]


# -- InstallSnapshot --------------------------------------------------------------------------


def test_a_follower_behind_the_compaction_catches_up_from_the_leaders_snapshot() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.crash(3)
    for i in range(10):
        net.propose(1, b"v%d" % i)
    snapshot = net.compact(1)
    assert snapshot.metadata.index == 11
    net.restart(3)
    net.tick(1)
    assert [str(e) for e in net.events if isinstance(e, SnapshotSent | SnapshotRestored)] == [
        "n1 sent snapshot at index 11 to n3",
        "n3 restored snapshot at index 11 (term 1)",
    ]
    assert net.applied(3) == net.applied(1)
    assert net.storage(3).snapshot().metadata.index == 11
    net.propose(1, b"after")
    assert net.applied(3)[-1] == b"after"
    assert net[1].status().progress[3].state is ProgressState.REPLICATE


def test_a_snapshot_older_than_the_commit_index_is_ignored() -> None:
    node, storage = new_node(2)
    node.step(
        message(M.APP, 1, 2, term=1, entries=tuple(Entry(1, i) for i in range(1, 6)), commit=5)
    )
    drain(node, storage)
    node.step(message(M.SNAP, 1, 2, term=1, snapshot=snapshot_at(3, 1)))
    (response,) = of_type(drain(node, storage), M.APP_RESP)
    assert response.index == 5
    assert storage.snapshot().is_empty()


def test_a_snapshot_of_entries_the_follower_has_only_moves_its_commit_index() -> None:
    node, storage = new_node(2)
    node.step(
        message(M.APP, 1, 2, term=1, entries=tuple(Entry(1, i) for i in range(1, 6)), commit=1)
    )
    drain(node, storage)
    node.step(message(M.SNAP, 1, 2, term=1, snapshot=snapshot_at(4, 1)))
    assert node.raft.log.committed == 4
    assert node.raft.log.last_index() == 5
    assert storage.snapshot().is_empty()


def test_a_follower_installs_a_snapshot_and_reports_its_new_last_index() -> None:
    node, storage = new_node(2)
    node.step(message(M.SNAP, 1, 2, term=2, snapshot=snapshot_at(10, 2)))
    ready = node.ready()
    assert ready.snapshot == snapshot_at(10, 2)
    assert ready.hard_state is not None and ready.hard_state.commit == 10
    assert [(m.type, m.index) for m in ready.messages] == [(M.APP_RESP, 10)]
    storage.apply_snapshot(ready.snapshot)
    node.advance(ready)
    assert node.status().applied == 10
    assert decode_state(storage.snapshot().data)[-1] == b"s9"


def test_a_node_restarts_from_a_snapshot_in_storage() -> None:
    storage = MemoryStorage.with_members([1, 2, 3])
    storage.apply_snapshot(snapshot_at(10, 2, voters=(1, 2, 3, 4)))
    node, _ = new_node(1, storage=storage)
    status = node.status()
    assert (status.hard_state.commit, status.applied, status.last_index) == (10, 10, 10)
    assert status.conf_state == ConfState(voters=(1, 2, 3, 4))


def leader_with_compacted_log() -> tuple[Network, int]:
    net = Network([1, 2, 3])
    net.elect(1)
    net.crash(3)
    for i in range(5):
        net.propose(1, b"v%d" % i)
    net.compact(1)
    net.restart(3)
    return net, 3


def test_a_failed_snapshot_is_sent_again_after_the_next_heartbeat() -> None:
    net, follower = leader_with_compacted_log()
    net.drop_if = lambda m: m.type is M.SNAP
    net.tick(1)
    assert net[1].status().progress[follower].state is ProgressState.SNAPSHOT
    net[1].report_snapshot(follower, failed=True)
    progress = net[1].status().progress[follower]
    assert (progress.state, progress.next) == (ProgressState.PROBE, progress.match + 1)
    net.heal()
    net.tick(1)
    assert net.applied(follower) == net.applied(1)


# -- the log and the leader's progress around a snapshot -------------------------------------


def test_the_log_refuses_reads_below_a_compaction() -> None:
    storage = MemoryStorage()
    storage.append(entries(1, 1, 2, 2))
    storage.create_snapshot(2)
    storage.compact(2)
    log = RaftLog(storage)
    assert log.first_index() == 3
    assert log.term(2) == 1, "the snapshot's term is still known"
    with pytest.raises(CompactedError):
        log.term(1)
    with pytest.raises(CompactedError):
        log.slice(2, 4)


def test_after_a_snapshot_the_follower_is_probed_from_the_snapshot() -> None:
    progress = Progress(next_index=3, max_inflight=4, match=2)
    progress.become_snapshot(20)
    assert progress.is_paused()
    progress.become_probe()
    assert (progress.state, progress.next) == (ProgressState.PROBE, 21)
