"""The backend: the applied state in SQLite, as etcd keeps it in bbolt (``kv/backend/``).

What restart relies on: committed history and meta come back as they were, an uncommitted
batch does not come back at all, and a commit carries its consistent index with its data. A
store rebuilt over the reopened history answers like the one that wrote it. Compaction frees
space that defragment gives back; a snapshot is a consistent, openable copy; a full disk
rolls the batch back whole; and a crash in the middle of a compaction cannot move the revision
back (etcd #17780).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kv.backend import (
    Backend,
    BackendError,
    BackendFullError,
    SnapshotHashError,
    summarize_file,
)
from kv.mvcc import CompactedError, HistoryEntry, KeyValue, RangeResult, Revision, Store


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "default.etcd" / "member" / "snap" / "db"


def put(key: bytes, value: bytes, revision: int, version: int = 1, lease: int = 0) -> HistoryEntry:
    return HistoryEntry(KeyValue(key, value, revision, revision, version, lease), tombstone=False)


def tombstone(key: bytes) -> HistoryEntry:
    return HistoryEntry(KeyValue(key, b"", 0, 0, 0), tombstone=True)


def every_read(store: Store) -> list[RangeResult | str]:
    reads: list[RangeResult | str] = []
    for revision in range(1, store.current_revision + 1):
        try:
            reads.append(store.range(b"\x00", b"\x00", revision=revision))
        except CompactedError:
            reads.append("compacted")
    return reads


def written_store(backend: Backend) -> Store:
    """Puts, an update, a delete and a compaction, committed as log entries 1..8."""
    store = Store(backend.history)
    store.put(b"a", b"1")  # 2
    store.put(b"b", b"1", lease=7)  # 3
    store.put(b"a", b"2")  # 4
    store.delete_range(b"b")  # 5
    store.put(b"c", b"1")  # 6
    backend.commit(5)
    backend.schedule_compaction(5)
    store.compact(5)
    backend.finish_compaction(5)
    backend.commit(6)
    store.put(b"b", b"2")  # 7: a new life of b
    store.put(b"a", b"3")  # 8
    backend.commit(8)
    return store


def test_history_round_trips_entries_and_tombstones(path: Path) -> None:
    entries = {
        Revision(2): put(b"a", b"\x00\xffvalue", 2, lease=0x1234_5678_9ABC_DEF0),
        Revision(3, 0): put(b"a", b"", 2, version=2),
        Revision(3, 1): tombstone(b"b"),
    }
    with Backend.open(path) as backend:
        backend.history.update(entries)
        backend.commit(1)
    with Backend.open(path) as backend:
        assert dict(backend.history) == entries
        assert Revision(3, 1) in backend.history
        assert Revision(3, 2) not in backend.history
        assert len(backend.history) == 3


def test_a_new_backend_is_at_index_0_with_no_compaction(path: Path) -> None:
    with Backend.open(path) as backend:
        assert (backend.consistent_index, backend.compact_revision) == (0, -1)
        assert backend.scheduled_compact_revision == -1
        assert dict(backend.history) == {}


def test_meta_round_trips(path: Path) -> None:
    with Backend.open(path) as backend:
        backend.schedule_compaction(9)
        backend.finish_compaction(9)
        backend.commit(42)
    with Backend.open(path) as backend:
        assert backend.consistent_index == 42
        assert (backend.scheduled_compact_revision, backend.compact_revision) == (9, 9)


def test_history_iterates_in_revision_order(path: Path) -> None:
    # Inserted out of order, and with mains whose text order differs from their number order.
    revisions = [Revision(10), Revision(2, 1), Revision(9), Revision(2, 0), Revision(2**40, 3)]
    with Backend.open(path) as backend:
        for revision in revisions:
            backend.history[revision] = put(b"k", str(revision).encode(), revision.main)
        backend.commit(1)
        in_order = sorted(revisions)
        assert list(backend.history) == in_order
        assert [stored for stored, _ in backend.history.items()] == in_order
        assert [entry.kv.value for entry in backend.history.values()] == [
            str(revision).encode() for revision in in_order
        ]


def test_deleting_a_missing_revision_is_a_key_error(path: Path) -> None:
    with Backend.open(path) as backend, pytest.raises(KeyError):
        del backend.history[Revision(2)]


def test_uncommitted_writes_are_gone_after_close_and_reopen(path: Path) -> None:
    with Backend.open(path) as backend:
        backend.history[Revision(2)] = put(b"a", b"kept", 2)
        backend.commit(1)
        backend.history[Revision(3)] = put(b"a", b"lost", 3)
        backend.finish_compaction(2)
        del backend.history[Revision(2)]
    with Backend.open(path) as backend:
        assert dict(backend.history) == {Revision(2): put(b"a", b"kept", 2)}
        assert (backend.consistent_index, backend.compact_revision) == (1, -1)


def test_a_reader_sees_a_batch_and_its_consistent_index_together(path: Path) -> None:
    # Another connection (the sqlite3 shell, a crash-time image) sees the file, not the batch.
    def seen() -> tuple[int, int]:
        with sqlite3.connect(path) as reader:
            rows = reader.execute("SELECT count(*) FROM kv").fetchone()[0]
            index = reader.execute(
                "SELECT value FROM meta WHERE name = 'consistent_index'"
            ).fetchone()[0]
            return rows, index

    with Backend.open(path) as backend:
        backend.history[Revision(2)] = put(b"a", b"1", 2)
        backend.history[Revision(3)] = put(b"b", b"1", 3)
        assert seen() == (0, 0)
        backend.commit(2)
        assert seen() == (2, 2)


def test_the_consistent_index_cannot_go_back(path: Path) -> None:
    with Backend.open(path) as backend:
        backend.commit(5)
        with pytest.raises(ValueError, match="below 5"):
            backend.commit(4)


def test_a_store_rebuilt_from_a_reopened_backend_answers_like_the_original(path: Path) -> None:
    with Backend.open(path) as backend:
        reads = every_read(written_store(backend))
    with Backend.open(path) as backend:
        rebuilt = Store(backend.history, compact_revision=backend.compact_revision)
        assert (rebuilt.current_revision, rebuilt.compact_revision) == (8, 5)
        assert every_read(rebuilt) == reads
        # And it goes on where the original stopped: a's fourth version, created at 2.
        assert rebuilt.put(b"a", b"4") == 9
        (kv,) = rebuilt.range(b"a").kvs
        assert (kv.create_revision, kv.mod_revision, kv.version) == (2, 9, 4)


def test_writes_grow_the_size(path: Path) -> None:
    with Backend.open(path) as backend:
        empty = backend.size_bytes
        for revision in range(2, 202):
            backend.history[Revision(revision)] = put(b"k", b"v" * 1000, revision)
        backend.commit(1)
        assert backend.size_bytes >= empty + 200 * 1000
        assert backend.size_in_use_bytes == backend.size_bytes  # nothing freed yet


def test_defragment_gives_back_the_pages_that_compaction_freed(path: Path) -> None:
    with Backend.open(path) as backend:
        store = Store(backend.history)
        for number in range(300):
            store.put(b"key%03d" % number, b"v" * 1000)
        store.delete_range(b"key", b"kez")
        backend.commit(1)
        full = backend.size_bytes
        backend.schedule_compaction(store.current_revision)
        store.compact(store.current_revision)
        backend.finish_compaction(store.current_revision)
        backend.commit(2)
        # Compaction frees pages; the file keeps them for reuse until defragmented.
        assert backend.size_bytes == full
        assert backend.size_in_use_bytes < full // 10
        backend.defragment()
        assert backend.size_bytes < full // 10
        assert backend.size_in_use_bytes == backend.size_bytes
        assert path.stat().st_size == backend.size_bytes


def test_defragment_refuses_while_a_batch_is_open(path: Path) -> None:
    with Backend.open(path) as backend:
        backend.history[Revision(2)] = put(b"a", b"1", 2)
        with pytest.raises(BackendError, match="commit or roll back"):
            backend.defragment()


def test_after_sync_the_db_file_alone_holds_every_commit(path: Path, tmp_path: Path) -> None:
    with Backend.open(path) as backend:
        written_store(backend)
        backend.sync()
        # What the main file would hold if the -wal file were lost.
        alone = tmp_path / "alone"
        shutil.copyfile(path, alone)
        with Backend.open(alone) as copy:
            assert dict(copy.history) == dict(backend.history)
            assert copy.consistent_index == 8


def test_snapshot_is_an_identical_openable_copy(path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.db"
    with Backend.open(path) as backend:
        original = written_store(backend)
        backend.snapshot_to(snapshot)
        with Backend.open(snapshot) as copy:
            assert dict(copy.history) == dict(backend.history)
            assert copy.consistent_index == backend.consistent_index
            assert copy.compact_revision == backend.compact_revision
            restored = Store(copy.history, compact_revision=copy.compact_revision)
            assert every_read(restored) == every_read(original)
    assert not snapshot.with_name("snapshot.db.part").exists()


def test_snapshot_holds_the_last_commit_not_the_open_batch(path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.db"
    with Backend.open(path) as backend:
        backend.history[Revision(2)] = put(b"a", b"1", 2)
        backend.commit(1)
        backend.history[Revision(3)] = put(b"a", b"2", 3, version=2)
        backend.snapshot_to(snapshot)
        assert backend.in_batch  # the batch goes on, untouched
    with Backend.open(snapshot) as copy:
        assert list(copy.history) == [Revision(2)]
        assert copy.consistent_index == 1


def test_restore_from_a_snapshot_starts_at_the_new_consistent_index(
    path: Path, tmp_path: Path
) -> None:
    snapshot = tmp_path / "snapshot.db"
    with Backend.open(path) as backend:
        written_store(backend)
        backend.snapshot_to(snapshot)
        history = dict(backend.history)
    restored_path = tmp_path / "restored.etcd" / "member" / "snap" / "db"
    restore = Backend.restore_from
    with restore(snapshot, restored_path, consistent_index=1, skip_hash_check=True) as restored:
        assert dict(restored.history) == history
        assert (restored.consistent_index, restored.compact_revision) == (1, 5)


def test_restore_checks_the_sha256_that_snapshot_save_appends(path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.db"
    with Backend.open(path) as backend:
        written_store(backend)
        backend.snapshot_to(snapshot)
    data = snapshot.read_bytes()
    snapshot.write_bytes(data + hashlib.sha256(data).digest())
    Backend.restore_from(snapshot, tmp_path / "good" / "db", consistent_index=1).close()
    snapshot.write_bytes(data + hashlib.sha256(b"other data").digest())
    with pytest.raises(SnapshotHashError, match=r"^expected sha256 \[\d+( \d+){31}\], got \["):
        Backend.restore_from(snapshot, tmp_path / "bad" / "db", consistent_index=1)
    assert not (tmp_path / "bad" / "db").exists()
    assert not (tmp_path / "bad" / "db.part").exists()


def test_restore_refuses_a_file_without_hash_unless_told_to_skip_the_check(
    path: Path, tmp_path: Path
) -> None:
    snapshot = tmp_path / "snapshot.db"
    with Backend.open(path) as backend:
        written_store(backend)
        backend.snapshot_to(snapshot)
    message = "^snapshot missing hash but --skip-hash-check=false$"
    with pytest.raises(SnapshotHashError, match=message):
        Backend.restore_from(snapshot, tmp_path / "plain" / "db", consistent_index=1)
    target = tmp_path / "skipped" / "db"
    Backend.restore_from(snapshot, target, consistent_index=1, skip_hash_check=True).close()
    assert target.exists()


def test_restore_refuses_to_overwrite_a_backend(path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.db"
    with Backend.open(path) as backend:
        backend.snapshot_to(snapshot)
    with pytest.raises(BackendError, match="already exists"):
        Backend.restore_from(snapshot, path, consistent_index=1)


def test_a_file_that_is_not_a_backend_is_refused(tmp_path: Path) -> None:
    bbolt = tmp_path / "db"
    bbolt.write_bytes(b"\x00" * 16 + b"\xed\xda\x0c\xed" + b"\x00" * 4076)  # bbolt's magic
    with pytest.raises(BackendError, match="not a kv backend"):
        Backend.open(bbolt)


def test_a_full_disk_raises_backend_full_error_and_rolls_the_batch_back(path: Path) -> None:
    with Backend.open(path, max_size_bytes=64 * 1024) as backend:
        backend.history[Revision(2)] = put(b"a", b"kept", 2)
        backend.commit(1)
        with pytest.raises(BackendFullError, match="database or disk is full"):
            for revision in range(3, 1000):
                backend.history[Revision(revision)] = put(b"a", b"v" * 1000, revision)
        assert not backend.in_batch
        assert list(backend.history) == [Revision(2)]
        # The backend goes on: a batch that fits commits.
        backend.history[Revision(3)] = put(b"b", b"small", 3)
        backend.commit(2)
    with Backend.open(path) as backend:
        assert list(backend.history) == [Revision(2), Revision(3)]
        assert backend.consistent_index == 2


def crash_in_the_middle_of_compacting_a_tombstone(path: Path) -> None:
    """etcd #17780's sequence: the newest revision is a tombstone, compaction removes it, and
    the process dies after the deletes are committed but before the finished revision is.
    Compaction keeps a tombstone at its revision now (etcd #18089), but files written by kv
    before (or by etcd 3.4.23) lack it: the test deletes it as they did."""
    with Backend.open(path) as backend:
        store = Store(backend.history)
        store.put(b"a", b"1")  # 2
        store.put(b"b", b"1")  # 3
        store.delete_range(b"b")  # 4: the newest revision is b's tombstone
        backend.commit(3)
        backend.schedule_compaction(4)
        backend.commit(4)
        store.compact(4)  # deletes b's row 3
        del backend.history[Revision(4)]  # and, before etcd #18089's fix, its tombstone at 4
        backend.commit(4)
        # the crash: finish_compaction(4) is never written


def test_a_compaction_interrupted_by_a_crash_is_finished_at_open(path: Path) -> None:
    crash_in_the_middle_of_compacting_a_tombstone(path)
    with Backend.open(path) as backend:
        assert (backend.scheduled_compact_revision, backend.compact_revision) == (4, 4)
        assert list(backend.history) == [Revision(2)]
        assert backend.consistent_index == 4


def test_revision_does_not_decrease_after_a_crash_during_compaction_etcd_17780(
    path: Path,
) -> None:
    crash_in_the_middle_of_compacting_a_tombstone(path)
    with Backend.open(path) as backend:
        store = Store(backend.history, compact_revision=backend.compact_revision)
        assert store.current_revision == 4
        assert store.put(b"c", b"1") == 5  # not 3, a revision that was already handed out


def test_finishing_a_compaction_at_a_tombstone_keeps_the_tombstone_etcd_18089(
    path: Path,
) -> None:
    with Backend.open(path) as backend:
        store = Store(backend.history)
        store.put(b"a", b"1")  # 2
        store.delete_range(b"a")  # 3
        backend.schedule_compaction(3)
        backend.commit(3)  # the crash: compaction scheduled, nothing deleted yet
    with Backend.open(path) as backend:
        assert [(r, e.tombstone) for r, e in backend.history.items()] == [(Revision(3), True)]


KEYS = [b"a", b"b", b"ab"]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(KEYS)),
        st.tuples(st.just("delete"), st.sampled_from(KEYS)),
        st.tuples(st.just("replace"), st.sampled_from(KEYS)),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(operations, st.integers(min_value=1, max_value=100))
def test_finishing_a_compaction_at_open_drops_what_store_compact_drops(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[str, bytes]], share: int
) -> None:
    path = tmp_path_factory.mktemp("finish") / "db"
    with Backend.open(path) as backend:
        store = Store(backend.history)
        for kind, key in writes:
            with store.write() as txn:
                if kind != "put":
                    txn.delete_range(key)
                if kind != "delete":  # "replace": deleted and re-created in one revision
                    txn.put(key, b"v")
        revision = max(1, store.current_revision * share // 100)
        backend.schedule_compaction(revision)
        backend.commit(1)  # the crash: compaction scheduled, nothing deleted yet
        expected = Store(dict(store.history))
        expected.compact(revision)
    with Backend.open(path) as backend:
        assert dict(backend.history) == dict(expected.history)
        assert backend.compact_revision == revision


def test_alarms_are_committed_with_the_batch_and_survive_reopening(path: Path) -> None:
    member = 0xBDAE9BBC11DD390D  # above 2**63: stored in hex, not as a signed integer
    with Backend.open(path) as backend:
        backend.add_alarm(member, "NOSPACE")
        backend.add_alarm(member, "NOSPACE")  # raising it again changes nothing
        backend.commit(1)
        backend.add_alarm(5, "CORRUPT")  # never committed
    with Backend.open(path) as backend:
        assert backend.alarms() == [(member, "NOSPACE")]
        backend.remove_alarm(member, "NOSPACE")
        backend.commit(2)
        assert backend.alarms() == []


def test_summarize_file_counts_rows_of_every_table_and_the_highest_revision(
    path: Path, tmp_path: Path
) -> None:
    snapshot = tmp_path / "snapshot.db"
    with Backend.open(path) as backend:
        written_store(backend)
        backend.add_alarm(1, "NOSPACE")
        backend.commit(9)
        backend.snapshot_to(snapshot)
        rows, revision = len(backend.history), max(r.main for r in backend.history)
        size = backend.size_bytes
    summary = summarize_file(snapshot)
    assert summary.revision == revision
    assert summary.total_keys == rows + 3 + 1  # kv rows, the 3 meta rows, 1 alarm
    assert summary.total_size == size
    # The SHA-256 that `etcdctl snapshot save` appends changes nothing of the summary.
    data = snapshot.read_bytes()
    snapshot.write_bytes(data + hashlib.sha256(data).digest())
    assert summarize_file(snapshot) == summary


def test_summarize_file_hash_covers_the_consistent_index(path: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    with Backend.open(path) as backend:
        written_store(backend)
        backend.snapshot_to(first)
        hash_before = backend.hash()
        backend.commit(backend.consistent_index + 1)
        backend.snapshot_to(second)
        assert backend.hash() == hash_before  # Maintenance.Hash ignores the index, as etcd
    assert summarize_file(first).hash != summarize_file(second).hash


def other_database(path: Path) -> Path:
    """A valid SQLite file that holds no kv backend: no ``kv`` and ``meta`` tables."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    return path


def test_summarize_file_refuses_a_database_without_the_kv_and_meta_tables(tmp_path: Path) -> None:
    other = other_database(tmp_path / "other.db")
    with pytest.raises(BackendError, match=r"other\.db: not a kv snapshot: no kv and meta tables$"):
        summarize_file(other)


def test_restore_refuses_a_database_without_the_kv_and_meta_tables(tmp_path: Path) -> None:
    other = other_database(tmp_path / "other.db")
    target = tmp_path / "restored" / "db"
    with pytest.raises(BackendError, match=r"other\.db: not a kv snapshot: no kv and meta tables$"):
        Backend.restore_from(other, target, consistent_index=1, skip_hash_check=True)
    assert not target.exists()


def test_summarize_file_refuses_a_file_that_is_not_a_backend(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackendError, match="not a kv snapshot"):
        summarize_file(other)
