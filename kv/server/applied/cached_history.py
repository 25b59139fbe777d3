"""The store's history on disk with its recent entries kept in memory (chapter 2).

A Range finds the revision of each key in the in-memory index, then reads the stored pair at
that revision from the history. On disk (`kv.backend.History`) that read is an SQLite query and
a new `HistoryEntry` for every key of every Range: a sixth of a member's own work per read.
etcd reads the same pair from bbolt's memory-mapped file, at no such cost.

`CachedHistory` is the backend's history with the entries read lately kept in a dict beside
it, so a pair read again does not reach SQLite. Caching needs no
invalidation: a revision's entry never changes once written (the store never overwrites), it
is only removed, by compaction, and what compaction removes no read asks for again (the
store refuses reads below the compacted revision, and the index forgets the rest). The
cache is bounded by entries and by bytes, oldest first out, so memory stays small whatever
the key space. It is driver code: the chapter's `kv.mvcc.Store` reads any mapping, and reads
this one as it reads a dict.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import ItemsView, Iterator, MutableMapping, ValuesView

from kv.backend import History
from kv.mvcc import HistoryEntry, Revision
from kv.mvcc.store import Change
from kv.mvcc.tree_index import IndexRow

#: At most this many entries are kept in memory.
MAX_ENTRIES = 32_768
#: At most this many bytes of keys and values (plus `ENTRY_OVERHEAD_BYTES` each) are kept.
MAX_BYTES = 16 * 1024 * 1024
#: What an entry costs in memory besides its key and value: its `Revision`, `HistoryEntry`,
#: `KeyValue` and the dict's slot, roughly.
ENTRY_OVERHEAD_BYTES = 300


class CachedHistory(MutableMapping[Revision, HistoryEntry]):
    """``history``, whose recent entries are read from memory (see the module's docstring)."""

    __slots__ = ("_bytes", "_history", "_max_bytes", "_max_entries", "_recent")

    def __init__(
        self, history: History, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES
    ) -> None:
        self._history = history
        self._recent: OrderedDict[Revision, HistoryEntry] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes

    def __getitem__(self, revision: Revision) -> HistoryEntry:
        entry = self._recent.get(revision)
        if entry is None:
            entry = self._history[revision]
            self._remember(revision, entry)
        return entry

    def __setitem__(self, revision: Revision, entry: HistoryEntry) -> None:
        # A write is not remembered: it would cost every put, and the first read remembers it.
        self._history[revision] = entry
        self._forget(revision)

    def __delitem__(self, revision: Revision) -> None:
        del self._history[revision]
        self._forget(revision)

    def __contains__(self, revision: object) -> bool:
        return revision in self._recent or revision in self._history

    def __len__(self) -> int:
        return len(self._history)

    def __iter__(self) -> Iterator[Revision]:
        return iter(self._history)

    def items(self) -> ItemsView[Revision, HistoryEntry]:
        return self._history.items()

    def values(self) -> ValuesView[HistoryEntry]:
        return self._history.values()

    def items_from(self, main: int) -> Iterator[Change]:
        """As `kv.backend.History.items_from` (a `kv.mvcc.store.SeekableHistory`)."""
        return self._history.items_from(main)

    def index_rows(self) -> Iterator[IndexRow]:
        """As `kv.backend.History.index_rows` (a `kv.mvcc.store.IndexedHistory`)."""
        return self._history.index_rows()

    @property
    def cached(self) -> int:
        """How many entries are in memory now."""
        return len(self._recent)

    def _remember(self, revision: Revision, entry: HistoryEntry) -> None:
        """Keep ``entry``, just read from disk (so not in memory), dropping the oldest beyond
        the bounds."""
        recent = self._recent
        recent[revision] = entry
        self._bytes += _size(entry)
        while len(recent) > self._max_entries or self._bytes > self._max_bytes:
            _, oldest = recent.popitem(last=False)
            self._bytes -= _size(oldest)

    def _forget(self, revision: Revision) -> None:
        entry = self._recent.pop(revision, None)
        if entry is not None:
            self._bytes -= _size(entry)


def _size(entry: HistoryEntry) -> int:
    return len(entry.kv.key) + len(entry.kv.value) + ENTRY_OVERHEAD_BYTES
