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
A key whose whole stored history is the one put that created it (most keys, after a bulk
load) is held as that put's main revision, a plain int, until something first looks at it
(`_index_at`): a million such keys cost a million ints, not a million `KeyIndex` objects,
each with a generation and two lists.
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


#: What the map holds for a key: its `KeyIndex`, or, for a key restored from one put that
#: created it (revision ``(main, 0)``, version 1), that ``main`` (see `TreeIndex._index_at`).
_Held = KeyIndex | int


class TreeIndex:
    """Key -> `KeyIndex`, kept in key order (a rebuilt key may be held as an int until first
    used: see the module docstring)."""

    def __init__(self) -> None:
        self._indexes: SortedDict[bytes, _Held] = SortedDict()
        # The keys whose current generation is empty (deleted now), and the newest main
        # revision recorded: at or after it, a key is live unless it is in `_deleted`.
        self._deleted: SortedList[bytes] = SortedList()
        self._newest = 0

    @classmethod
    def rebuilt(cls, rows: Iterable[IndexRow]) -> TreeIndex:
        """The index of a stored history, given in revision order (chapter 2).

        Each row goes to its key's `KeyIndex` (`KeyIndex.restore`, `restore_tombstone`),
        found in a plain dict; the sorted map is made at the end by one sort of the keys,
        which is far cheaper than a million ordered inserts. A key's first put, if it created
        the key, is held as its main revision (see the module docstring); any later row of
        the key makes its `KeyIndex`.
        """
        indexes: dict[bytes, _Held] = {}
        deleted: set[bytes] = set()
        main = 0
        for main, sub, tombstone, key, created, version in rows:
            held = indexes.get(key)
            if held is None and not tombstone and created == main and sub == 0 and version == 1:
                indexes[key] = main  # the common case: no object made for the key at all
                continue
            index = indexes[key] = _key_index(key, held)
            revision = Revision(main, sub)
            if tombstone:
                index.restore_tombstone(revision)
                deleted.add(key)
                continue
            index.restore(revision, revision if created == main else Revision(created), version)
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
        return self._index_at(key) if key in self._indexes else None

    def _index_at(self, key: bytes) -> KeyIndex:
        """The `KeyIndex` of ``key``, which the map holds: made now if held as an int."""
        held = self._indexes[key]
        if isinstance(held, int):
            held = self._indexes[key] = _key_index(key, held)
        return held

    def put(self, key: bytes, revision: Revision) -> None:
        index = self._key_index_for(key)
        if index.is_deleted():
            self._deleted.remove(key)  # a new life begins
        index.put(revision)
        self._newest = revision.main

    def _key_index_for(self, key: bytes) -> KeyIndex:
        if key in self._indexes:
            return self._index_at(key)
        index = self._indexes[key] = KeyIndex(key)
        return index

    def tombstone(self, key: bytes, revision: Revision) -> None:
        index = self.key_index(key)
        if index is None:
            raise LookupError(f"cannot delete {key!r}: it does not exist")
        index.tombstone(revision)
        self._deleted.add(key)
        self._newest = revision.main

    def get(self, key: bytes, at: int) -> KeyVersion | None:
        index = self.key_index(key)
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
            index = self.key_index(key)
            if index is not None:
                yield index
            return
        maximum = None if range_end == FROM_KEY else range_end
        for found in self._indexes.irange(key, maximum, inclusive=(True, False)):
            yield self._index_at(found)

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
            if isinstance(index, int):
                _keep_held(index, at, keep)  # one revision: compaction removes nothing
                continue
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
        for held in self._indexes.values():
            if isinstance(held, int):
                _keep_held(held, at, keep)
            else:
                held.keep(at, keep)
        return keep


def _key_index(key: bytes, held: _Held | None) -> KeyIndex:
    """The `KeyIndex` of what the map holds for ``key`` (a new, empty one for None)."""
    if held is None:
        return KeyIndex(key)
    if isinstance(held, int):  # the put at (held, 0) that created the key, version 1
        revision = Revision(held)
        return KeyIndex(key, [Generation([revision], 1, revision)])
    return held


def _keep_held(main: int, at: int, keep: set[Revision]) -> None:
    """What `KeyIndex.compact` and `KeyIndex.keep` keep of a key held as the main revision of
    its one put: that put, if a read at ``at`` sees it."""
    if main <= at:
        keep.add(Revision(main))


def _count_in(
    keys: SortedList[bytes] | SortedDict[bytes, _Held], key: bytes, range_end: bytes
) -> int:
    """How many of the sorted ``keys`` fall in the range (etcd's ``range_end`` convention)."""
    if not range_end:
        return 1 if key in keys else 0
    high = len(keys) if range_end == FROM_KEY else keys.bisect_left(range_end)
    return max(0, high - keys.bisect_left(key))
