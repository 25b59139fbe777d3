"""The multi-version key-value store (chapter 1).

Theory of operation
-------------------
The store never overwrites. Every change is appended to ``history`` under a new `Revision`,
and the `TreeIndex` remembers, per key, at which revisions it changed. A read at revision ``r``
asks the index which revision of each key was live at ``r`` and fetches those values from
history. That is all multi-version concurrency control needs: old readers keep their view,
and ``etcdctl get --rev`` can travel back in time until compaction drops the past.

The rules are etcd's (``mvcc/kvstore.go``, ``kvstore_txn.go``):

* A fresh store is at revision 1. A write request that changes something moves the store to
  the next main revision, however many keys it touches; each of its operations gets the next
  sub revision. A request that changes nothing (a delete that matches no key) keeps the revision.
* A put creates the key (``version`` 1, ``create_revision`` = this revision) or updates it
  (``version`` + 1, ``create_revision`` unchanged).
* A delete writes a tombstone and ends the key's generation; a later put starts a new one.
* Compaction at ``r`` drops every change that no read at ``r`` or later can see.

This module is pure: no I/O, no clock. ``history`` is any mapping from `Revision` to
`HistoryEntry` that iterates in revision order: a plain dict here, and in chapter 2 a table
on disk handed in by the server (the store itself still does no I/O).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

from kv.mvcc.errors import CompactedError, FutureRevisionError
from kv.mvcc.revision import Revision
from kv.mvcc.tree_index import IndexRow, TreeIndex

FIRST_REVISION = 1  # etcd starts counting at 1, so "revision 0" can mean "the latest"
NO_COMPACTION = -1


@dataclass(frozen=True, slots=True)
class KeyValue:
    """A key at one revision; the fields of etcd's ``mvccpb.KeyValue``."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0

    def __deepcopy__(self, memo: dict[int, object]) -> KeyValue:
        return self  # immutable: shared by a deep copy (`kv.sim.Cluster.copy`'s keyframes)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored change: the key-value it wrote, or a tombstone (a `KeyValue` with only a key)."""

    kv: KeyValue
    tombstone: bool

    def __deepcopy__(self, memo: dict[int, object]) -> HistoryEntry:
        return self  # immutable: shared by a deep copy (`kv.sim.Cluster.copy`'s keyframes)


@dataclass(frozen=True, slots=True)
class RangeResult:
    """What a range read returns."""

    kvs: list[KeyValue]  # in key order, at most `limit`; empty for count_only
    count: int  # every key in the range, regardless of limit
    revision: int  # the store's current revision, also for a historic read


#: One stored change as the store wrote it: where, and what (chapter 8's watches read these).
Change = tuple[Revision, HistoryEntry]
#: Told of every write request that changed something: its revision and its changes in order.
WriteObserver = Callable[[int, Sequence[Change]], None]


@runtime_checkable
class IndexedHistory(Protocol):
    """A history that can list what rebuilding the key index needs without the values
    (chapter 2's table on disk reads fewer columns); a plain dict gives its entries."""

    def index_rows(self) -> Iterator[IndexRow]: ...


def _index_rows(history: Mapping[Revision, HistoryEntry]) -> Iterable[IndexRow]:
    if isinstance(history, IndexedHistory):
        return history.index_rows()
    return (
        (s.main, s.sub, e.tombstone, e.kv.key, e.kv.create_revision, e.kv.version)
        for s, e in history.items()
    )


@runtime_checkable
class SeekableHistory(Protocol):
    """A history that can start iterating at a revision without reading what comes before
    (chapter 2's table on disk); a plain dict is read from its start."""

    def items_from(self, main: int) -> Iterator[Change]: ...


class Store:
    """An in-memory MVCC key-value store with etcd's revision semantics."""

    def __init__(
        self,
        history: MutableMapping[Revision, HistoryEntry] | None = None,
        *,
        compact_revision: int = NO_COMPACTION,
    ) -> None:
        """A fresh store, or (chapter 2) the store recorded in ``history``.

        Given a non-empty history, the key index is rebuilt by replaying it, as etcd rebuilds
        its in-memory index from the backend at start (``mvcc/kvstore.go``, ``restore``).
        """
        # Revisions only grow, so insertion order is revision order: a plain dict is the
        # ordered "key bucket" that etcd keeps in bbolt.
        self.history: MutableMapping[Revision, HistoryEntry] = {} if history is None else history
        self.index = TreeIndex.rebuilt(_index_rows(self.history))
        self._compact_revision = compact_revision
        self._observers: list[WriteObserver] = []
        # The newest stored change gives the revision. Compaction keeps every change at its
        # revision, but a file written before kv kept a delete's tombstone there (etcd
        # #18089) may have lost the newest change: the store is at least at the revision it
        # compacted.
        self._current_revision = max(FIRST_REVISION, self.index.newest, compact_revision)

    @property
    def current_revision(self) -> int:
        return self._current_revision

    @property
    def compact_revision(self) -> int:
        """The revision of the last compaction, or -1 if there has been none."""
        return self._compact_revision

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
    ) -> RangeResult:
        """Read ``[key, range_end)`` as of ``revision`` (0 or less: the current revision)."""
        return self._range(key, range_end, self._current_revision, revision, limit, count_only)

    def write(self) -> WriteTxn:
        """Begin a write request: every operation in it shares the next main revision."""
        return WriteTxn(self)

    def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        """Put one key as a request of its own; return the new revision."""
        with self.write() as txn:
            txn.put(key, value, lease)
        return txn.revision

    def delete_range(self, key: bytes, range_end: bytes = b"") -> tuple[int, int]:
        """Delete a range as a request of its own; return (keys deleted, revision after)."""
        with self.write() as txn:
            deleted = txn.delete_range(key, range_end)
        return deleted, txn.revision

    # --8<-- [start:compact]
    def compact(self, revision: int) -> None:
        """Drop history that no read at ``revision`` or later can see."""
        if revision <= self._compact_revision:
            raise CompactedError()
        if revision > self._current_revision:
            raise FutureRevisionError()
        keep = self.index.compact(revision)
        doomed = []
        for stored in self.history:
            if stored.main > revision:
                break
            if stored not in keep:
                doomed.append(stored)
        for stored in doomed:
            del self.history[stored]
        self._compact_revision = revision

    # --8<-- [end:compact]

    def changes(self, up_to: int, since: int = 0) -> Iterator[Change]:
        """Every stored change with ``since`` <= main revision <= ``up_to``, in revision order."""
        rows = (
            self.history.items_from(since)
            if isinstance(self.history, SeekableHistory)
            else iter(self.history.items())
        )
        for stored, entry in rows:
            if stored.main > up_to:
                return
            if stored.main >= since:
                yield stored, entry

    # --8<-- [start:observe]
    def observe(self, observer: WriteObserver) -> None:
        """Tell ``observer`` of every write request that changes something, as it ends.

        This is the one seam between the store and chapter 8's watches (etcd:
        ``watchableStoreTxnWrite.End`` hands ``Changes()`` to ``notify``): every write -- a put,
        a delete, a transaction's operations in order, a lease's keys revoked -- goes through a
        `WriteTxn`, so every write reaches the watchers, on every member that applies it.
        """
        self._observers.append(observer)

    def forget(self, observer: WriteObserver) -> None:
        """Stop telling ``observer`` (a store being replaced by a leader's snapshot)."""
        self._observers.remove(observer)

    # --8<-- [end:observe]

    # --8<-- [start:range]
    def _range(
        self,
        key: bytes,
        range_end: bytes,
        current: int,
        revision: int,
        limit: int,
        count_only: bool,
    ) -> RangeResult:
        if revision > current:
            raise FutureRevisionError()
        at = current if revision <= 0 else revision
        # Reading exactly at the compaction revision is allowed: compaction kept that view.
        if at < self._compact_revision:
            raise CompactedError()
        if count_only:  # no values: the index counts (at the newest revision, cheaply)
            return RangeResult([], self.index.count(key, range_end, at), current)
        found = self.index.range(key, range_end, at)
        shown = found[:limit] if limit > 0 else found
        kvs = [self.history[version.modified].kv for _, version in shown]
        return RangeResult(kvs, len(found), current)

    # --8<-- [end:range]


class WriteTxn:
    """One write request: ``with store.write() as txn: txn.put(...); txn.delete_range(...)``.

    Its operations are numbered by sub revision under the main revision ``begin + 1``. Its reads
    see its own writes. The store moves to the new revision when the request ends, and only if
    something changed.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._begin = store.current_revision
        self._changes = 0
        self._written: list[Change] = []

    def __enter__(self) -> WriteTxn:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # An exception mid-request would leave half a request applied: the apply layer
        # validates everything before it writes, so reaching here with one is a bug.
        if self._changes:
            self._store._current_revision = self._begin + 1
            for observer in self._store._observers:
                observer(self._begin + 1, self._written)

    @property
    def changes(self) -> Sequence[Change]:
        """What this request wrote so far, in order (etcd: ``Changes()``)."""
        return self._written

    @property
    def revision(self) -> int:
        """The revision this request produces (the current one if it changed nothing)."""
        return self._begin + 1 if self._changes else self._begin

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
    ) -> RangeResult:
        """Read as `Store.range` does, seeing this request's own writes."""
        return self._store._range(key, range_end, self.revision, revision, limit, count_only)

    # --8<-- [start:put]
    def put(self, key: bytes, value: bytes, lease: int = 0) -> None:
        """Create ``key`` or give it a new value, as the next operation of this request."""
        main = self._begin + 1
        previous = self._store.index.get(key, main)
        if previous is None:  # a new key, or a new generation after a delete
            created, version = main, 1
        else:
            created, version = previous.created.main, previous.version + 1
        stored = self._next_revision()
        entry = HistoryEntry(KeyValue(key, value, created, main, version, lease), tombstone=False)
        self._store.history[stored] = entry
        self._store.index.put(key, stored)
        self._written.append((stored, entry))

    # --8<-- [end:put]

    # --8<-- [start:delete]
    def delete_range(self, key: bytes, range_end: bytes = b"") -> int:
        """Write a tombstone for every live key in the range; return how many."""
        doomed = self._store.index.range(key, range_end, self.revision)
        for doomed_key, _ in doomed:
            stored = self._next_revision()
            entry = HistoryEntry(KeyValue(doomed_key, b"", 0, 0, 0), tombstone=True)
            self._store.history[stored] = entry
            self._store.index.tombstone(doomed_key, stored)
            self._written.append((stored, entry))
        return len(doomed)

    # --8<-- [end:delete]

    def _next_revision(self) -> Revision:
        stored = Revision(self._begin + 1, self._changes)
        self._changes += 1
        return stored
