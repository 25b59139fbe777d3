"""Snapshot files: saved durably under etcd's names, loaded newest-intact-first, pruned."""

from __future__ import annotations

from pathlib import Path

from kv.api.raftpb import raft_pb2
from kv.snap import Snapshotter, snapshot_name


def snapshot(term: int, index: int) -> raft_pb2.Snapshot:
    return raft_pb2.Snapshot(metadata=raft_pb2.SnapshotMetadata(term=term, index=index))


def test_a_snapshot_file_is_named_term_then_index_in_16_hex_digits() -> None:
    assert snapshot_name(2, 100000) == "0000000000000002-00000000000186a0.snap"


def test_a_saved_snapshot_loads_back(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path)
    snapshotter.save(snapshot(1, 42))
    assert snapshotter.load() == snapshot(1, 42)


def test_load_picks_the_newest_snapshot(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path)
    for index in (10, 30, 20):
        snapshotter.save(snapshot(1, index))
    loaded = snapshotter.load()
    assert loaded is not None and loaded.metadata.index == 30


def test_a_broken_newest_snapshot_is_skipped_for_the_previous_one(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path)
    snapshotter.save(snapshot(1, 10))
    newest = snapshotter.save(snapshot(1, 20))
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0xFF
    newest.write_bytes(bytes(data))
    loaded = snapshotter.load()
    assert loaded is not None and loaded.metadata.index == 10


def test_a_torn_snapshot_file_is_not_trusted(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path)
    path = snapshotter.save(snapshot(1, 10))
    path.write_bytes(path.read_bytes()[:3])
    assert snapshotter.load() is None


def test_no_snapshot_loads_as_none(tmp_path: Path) -> None:
    assert Snapshotter(tmp_path).load() is None


def test_purge_keeps_the_newest_files(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path)
    for index in range(1, 8):
        snapshotter.save(snapshot(1, index))
    deleted = snapshotter.purge(keep=5)
    assert [path.name for path in deleted] == [snapshot_name(1, 1), snapshot_name(1, 2)]
    assert [path.name for path in snapshotter.files()] == [snapshot_name(1, i) for i in range(3, 8)]


def test_saving_leaves_no_temporary_file(tmp_path: Path) -> None:
    Snapshotter(tmp_path).save(snapshot(1, 1))
    assert sorted(path.name for path in tmp_path.iterdir()) == [snapshot_name(1, 1)]
