"""The history with its recent entries in memory (``kv/server/applied/cached_history.py``).

A store over it answers exactly as one over the backend's history does; a pair read once is
read from memory after (a write is not kept); memory stays within its bounds, and what falls
out is read from disk again; a compacted revision is gone from memory too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kv.backend import Backend, History
from kv.mvcc import HistoryEntry, KeyValue, Revision, Store
from kv.server.applied.cached_history import ENTRY_OVERHEAD_BYTES, CachedHistory


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = Backend.open(tmp_path / "member" / "snap" / "db")
    yield opened
    opened.close()


@pytest.fixture
def disk_reads(monkeypatch: pytest.MonkeyPatch) -> list[Revision]:
    """Every revision read from SQLite by `History.__getitem__`."""
    reads: list[Revision] = []
    read = History.__getitem__

    def counted(history: History, revision: Revision) -> HistoryEntry:
        reads.append(revision)
        return read(history, revision)

    monkeypatch.setattr(History, "__getitem__", counted)
    return reads


def write(store: Store) -> None:
    store.put(b"a", b"1")
    store.put(b"b", b"1", lease=7)
    store.put(b"a", b"2")
    store.delete_range(b"b")
    store.put(b"c", b"3")
    store.compact(4)
    store.put(b"a", b"3")


def test_a_store_over_the_cache_answers_as_one_over_the_disk(backend: Backend) -> None:
    cached = Store(CachedHistory(backend.history))
    write(cached)
    backend.commit(consistent_index=1)
    disk = Store(backend.history, compact_revision=4)
    for revision in range(4, cached.current_revision + 1):  # every revision not compacted
        everything = (b"\x00", b"\x00")
        assert cached.range(*everything, revision=revision) == disk.range(
            *everything, revision=revision
        )


def test_a_write_is_not_kept_in_memory(backend: Backend) -> None:
    history = CachedHistory(backend.history)
    Store(history).put(b"k", b"v")
    assert history.cached == 0


def test_a_pair_read_from_disk_once_is_read_from_memory_after(
    backend: Backend, disk_reads: list[Revision]
) -> None:
    Store(backend.history).put(b"k", b"v")
    store = Store(CachedHistory(backend.history))
    store.range(b"k")
    store.range(b"k")
    assert disk_reads == [Revision(2, 0)]


def test_memory_holds_at_most_max_entries_and_the_oldest_go_first(
    backend: Backend, disk_reads: list[Revision]
) -> None:
    history = CachedHistory(backend.history, max_entries=2)
    store = Store(history)
    for key in (b"a", b"b", b"c"):
        store.put(key, b"v")
    for key in (b"a", b"b", b"c"):  # each read from disk once ...
        store.range(key)
    assert history.cached == 2
    del disk_reads[:]
    store.range(b"c")
    assert disk_reads == []  # ... "c" from memory since ...
    store.range(b"a")
    assert disk_reads == [Revision(2, 0)]  # ... but "a", the oldest, was dropped


def test_memory_holds_at_most_max_bytes(backend: Backend) -> None:
    one_entry = len(b"a") + len(b"value") + ENTRY_OVERHEAD_BYTES
    history = CachedHistory(backend.history, max_bytes=2 * one_entry)
    store = Store(history)
    for key in (b"a", b"b", b"c"):
        store.put(key, b"value")
        store.range(key)
    assert history.cached == 2


def test_an_entry_larger_than_the_memory_bound_is_not_kept(backend: Backend) -> None:
    history = CachedHistory(backend.history, max_bytes=100)
    store = Store(history)
    store.put(b"k", b"x" * 1000)
    assert store.range(b"k").kvs[0].value == b"x" * 1000
    assert history.cached == 0


def test_a_compacted_revision_is_gone_from_memory_too(backend: Backend) -> None:
    history = CachedHistory(backend.history)
    store = Store(history)
    store.put(b"k", b"1")
    store.range(b"k")  # revision 2 in memory
    store.put(b"k", b"2")
    store.range(b"k")  # and 3
    store.compact(3)
    assert Revision(2, 0) not in history
    assert history.get(Revision(2, 0)) is None
    assert history.cached == 1


def test_a_cached_history_reads_like_the_disk(backend: Backend) -> None:
    entry = HistoryEntry(KeyValue(b"k", b"v", 2, 2, 1), tombstone=False)
    history = CachedHistory(backend.history)
    history[Revision(2, 0)] = entry
    assert len(history) == 1
    assert list(history) == [Revision(2, 0)]
    assert list(history.items()) == [(Revision(2, 0), entry)]
    assert list(history.values()) == [entry]
    assert list(history.items_from(2)) == [(Revision(2, 0), entry)]
    assert list(history.index_rows()) == list(backend.history.index_rows())
