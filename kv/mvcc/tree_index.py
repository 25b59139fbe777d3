"""The tree index: every key in order, each with its `KeyIndex` (chapter 1).

etcd keeps its key indexes in a B-tree ordered by key bytes (``mvcc/index.go``) so that a range
``[key, range_end)`` is a walk over neighbours. We use `sortedcontainers.SortedDict`, which gives
the same ordered walk with ``irange``.

Ranges use etcd's wire convention for ``range_end``: empty means the single key ``key``; the
one byte ``\\x00`` means every key greater than or equal to ``key``; anything else is the
half-open interval ``[key, range_end)``, which is empty when ``range_end <= key``.
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedDict

from kv.mvcc.key_index import KeyIndex, KeyVersion
from kv.mvcc.revision import Revision

FROM_KEY = b"\x00"  # range_end meaning "every key >= key"


class TreeIndex:
    """Key -> `KeyIndex`, kept in key order."""

    def __init__(self) -> None:
        self._indexes: SortedDict[bytes, KeyIndex] = SortedDict()

    def __len__(self) -> int:
        return len(self._indexes)

    def key_index(self, key: bytes) -> KeyIndex | None:
        """The `KeyIndex` of ``key``, or None if the index holds nothing for it."""
        return self._indexes.get(key)

    def put(self, key: bytes, revision: Revision) -> None:
        self._key_index_for(key).put(revision)

    def _key_index_for(self, key: bytes) -> KeyIndex:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = KeyIndex(key)
        return index

    def restore(self, key: bytes, revision: Revision, created: Revision, version: int) -> None:
        """Record a put read back from stored history: see `KeyIndex.restore`."""
        self._key_index_for(key).restore(revision, created, version)

    def restore_tombstone(self, key: bytes, revision: Revision) -> None:
        """Record a delete read back from stored history: see `KeyIndex.restore_tombstone`."""
        self._key_index_for(key).restore_tombstone(revision)

    def tombstone(self, key: bytes, revision: Revision) -> None:
        index = self._indexes.get(key)
        if index is None:
            raise LookupError(f"cannot delete {key!r}: it does not exist")
        index.tombstone(revision)

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
        return keep

    def keep(self, at: int) -> set[Revision]:
        """The revisions `compact` at ``at`` would keep, without compacting."""
        keep: set[Revision] = set()
        for index in self._indexes.values():
            index.keep(at, keep)
        return keep
