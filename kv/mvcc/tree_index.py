"""The tree index: every key in order, each with its `KeyIndex` (chapter 1).

etcd keeps its key indexes in a B-tree ordered by key bytes (``mvcc/index.go``) so that a range
``[key, range_end)`` is a walk over neighbours. We use `sortedcontainers.SortedDict`, which gives
the same ordered walk with ``irange``.

Ranges use etcd's wire convention for ``range_end``: empty means the single key ``key``; the
one byte ``\\x00`` means every key greater than or equal to ``key``; anything else is the
half-open interval ``[key, range_end)``, which is empty when ``range_end <= key``.

Two things here serve speed, not the model (issue 12: a restart with a million keys). Beside
the map, a sorted list holds the keys that are deleted now (their current generation is
empty), so counting the keys of a range at the newest revision is a few bisections rather
than a walk: every key of the range, less the deleted ones (`count`). And a stored history
is loaded in bulk (`rebuilt`): each key's `KeyIndex` first, then one sort of all the keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sortedcontainers import SortedDict, SortedList

from kv.mvcc.key_index import Generation, KeyIndex, KeyVersion
from kv.mvcc.revision import Revision

FROM_KEY = b"\x00"  # range_end meaning "every key >= key"

#: One stored change as the index needs it to rebuild (chapter 2): its revision (main, sub),
#: whether it is a delete (a true int), its key, and for a put its create revision and
#: version. The columns of chapter 2's table, in its order.
IndexRow = tuple[int, int, int, bytes, int, int]


class TreeIndex:
    """Key -> `KeyIndex`, kept in key order."""

    def __init__(self) -> None:
        self._indexes: SortedDict[bytes, KeyIndex] = SortedDict()
        # The keys whose current generation is empty (deleted now), and the newest main
        # revision recorded: at or after it, a key is live unless it is in `_deleted`.
        self._deleted: SortedList[bytes] = SortedList()
        self._newest = 0

    @classmethod
    def rebuilt(cls, rows: Iterable[IndexRow]) -> TreeIndex:
        """The index of a stored history, given in revision order (chapter 2).

        Each row goes to its key's `KeyIndex` (`KeyIndex.restore`, `restore_tombstone`),
        found in a plain dict; the sorted map is made at the end by one sort of the keys,
        which is far cheaper than a million ordered inserts. A key's first put makes its
        `KeyIndex` with that life at once (what `restore` would make of an empty one).
        """
        indexes: dict[bytes, KeyIndex] = {}
        deleted: set[bytes] = set()
        main = 0
        for main, sub, tombstone, key, created, version in rows:
            revision = Revision(main, sub)
            index = indexes.get(key)
            if tombstone:
                if index is None:
                    index = indexes[key] = KeyIndex(key)
                index.restore_tombstone(revision)
                deleted.add(key)
                continue
            # Usually the put created its key: its own revision is the creation, one object
            # fewer per key.
            creation = revision if created == main and sub == 0 else Revision(created)
            if index is None:
                indexes[key] = KeyIndex(key, [Generation([revision], version, creation)])
            else:
                index.restore(revision, creation, version)
                deleted.discard(key)
        tree = cls()
        tree._indexes = SortedDict(indexes)
        tree._deleted = SortedList(deleted)
        tree._newest = main
        return tree

    def __len__(self) -> int:
        return len(self._indexes)

    @property
    def newest(self) -> int:
        """The newest main revision the index has recorded (0 if none)."""
        return self._newest

    def key_index(self, key: bytes) -> KeyIndex | None:
        """The `KeyIndex` of ``key``, or None if the index holds nothing for it."""
        return self._indexes.get(key)

    def put(self, key: bytes, revision: Revision) -> None:
        index = self._key_index_for(key)
        if index.is_deleted():
            self._deleted.remove(key)  # a new life begins
        index.put(revision)
        self._newest = revision.main

    def _key_index_for(self, key: bytes) -> KeyIndex:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = KeyIndex(key)
        return index

    def tombstone(self, key: bytes, revision: Revision) -> None:
        index = self._indexes.get(key)
        if index is None:
            raise LookupError(f"cannot delete {key!r}: it does not exist")
        index.tombstone(revision)
        self._deleted.add(key)
        self._newest = revision.main

    def get(self, key: bytes, at: int) -> KeyVersion | None:
        index = self._indexes.get(key)
        return None if index is None else index.get(at)

    # --8<-- [start:range]
    def range(self, key: bytes, range_end: bytes, at: int) -> list[tuple[bytes, KeyVersion]]:
        """Every key of the range that existed at main revision ``at``, in key order."""
        found = []
        for index in self._indexes_in(key, range_end):
            version = index.get(at)
            if version is not None:
                found.append((index.key, version))
        return found

    def _indexes_in(self, key: bytes, range_end: bytes) -> Iterator[KeyIndex]:
        if not range_end:
            index = self._indexes.get(key)
            if index is not None:
                yield index
            return
        maximum = None if range_end == FROM_KEY else range_end
        for found in self._indexes.irange(key, maximum, inclusive=(True, False)):
            yield self._indexes[found]

    # --8<-- [end:range]

    def count(self, key: bytes, range_end: bytes, at: int) -> int:
        """How many keys of the range existed at main revision ``at``: ``len(range(...))``.

        At or after the newest revision recorded, without walking the keys: the keys of the
        range in the map, less those deleted now. An older revision walks the range.
        """
        if at < self._newest:
            return len(self.range(key, range_end, at))
        return _count_in(self._indexes, key, range_end) - _count_in(self._deleted, key, range_end)

    def compact(self, at: int) -> set[Revision]:
        """Compact every key index at ``at``; return the revisions that must be kept."""
        keep: set[Revision] = set()
        emptied = []
        for index in self._indexes.values():
            index.compact(at, keep)
            if index.is_empty():
                emptied.append(index.key)
        for key in emptied:
            del self._indexes[key]
            self._deleted.discard(key)  # only a deleted key's history can empty
        return keep

    def keep(self, at: int) -> set[Revision]:
        """The revisions `compact` at ``at`` would keep, without compacting."""
        keep: set[Revision] = set()
        for index in self._indexes.values():
            index.keep(at, keep)
        return keep


def _count_in(
    keys: SortedList[bytes] | SortedDict[bytes, KeyIndex], key: bytes, range_end: bytes
) -> int:
    """How many of the sorted ``keys`` fall in the range (etcd's ``range_end`` convention)."""
    if not range_end:
        return 1 if key in keys else 0
    high = len(keys) if range_end == FROM_KEY else keys.bisect_left(range_end)
    return max(0, high - keys.bisect_left(key))
