"""Table ``kv`` as the MVCC store's history: `History`, ``Revision -> HistoryEntry`` (chapter 2).

`kv.mvcc.Store` keeps its history in any ``MutableMapping[Revision, HistoryEntry]``; on disk
that mapping is `History`, a view of the backend's table ``kv`` (`kv.backend.schema`) whose
writes join the backend's open batch (`kv.backend.backend.Backend`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import ItemsView, Iterator, MutableMapping, ValuesView
from typing import TYPE_CHECKING

from kv.mvcc.revision import Revision
from kv.mvcc.store import HistoryEntry, KeyValue
from kv.mvcc.tree_index import IndexRow

if TYPE_CHECKING:
    from kv.backend.backend import Backend

_COLUMNS = "tombstone, key, value, create_revision, mod_revision, version, lease"
_GET = f"SELECT {_COLUMNS} FROM kv WHERE main = ? AND sub = ?"
_PUT = "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE = "DELETE FROM kv WHERE main = ? AND sub = ?"
_CONTAINS = "SELECT 1 FROM kv WHERE main = ? AND sub = ?"
_KEYS = "SELECT main, sub FROM kv ORDER BY main, sub"
_ROWS = f"SELECT main, sub, {_COLUMNS} FROM kv ORDER BY main, sub"
_ROWS_FROM = f"SELECT main, sub, {_COLUMNS} FROM kv WHERE main >= ? ORDER BY main, sub"
_VALUES = f"SELECT {_COLUMNS} FROM kv ORDER BY main, sub"
_INDEX_ROWS = (
    "SELECT main, sub, tombstone, key, create_revision, version FROM kv ORDER BY main, sub"
)


def _entry(row: tuple[int, bytes, bytes, int, int, int, int]) -> HistoryEntry:
    tombstone, key, value, create_revision, mod_revision, version, lease = row
    kv = KeyValue(key, value, create_revision, mod_revision, version, lease)
    return HistoryEntry(kv, bool(tombstone))


class History(MutableMapping[Revision, HistoryEntry]):
    """Table ``kv`` as the store's history: ``Revision -> HistoryEntry``, in revision order.

    Reads see the open batch (it is the same connection); writes join it. Iteration streams
    rows from SQLite in ``(main, sub)`` order, the table's primary key order, so no sorting.
    """

    __slots__ = ("_backend", "_connection")

    def __init__(self, backend: Backend, connection: sqlite3.Connection) -> None:
        self._backend = backend
        self._connection = connection

    # --8<-- [start:history]
    def __getitem__(self, revision: Revision) -> HistoryEntry:
        row = self._connection.execute(_GET, (revision.main, revision.sub)).fetchone()
        if row is None:
            raise KeyError(revision)
        return _entry(row)

    def __setitem__(self, revision: Revision, entry: HistoryEntry) -> None:
        kv = entry.kv
        fields = (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)
        self._backend.write(_PUT, (revision.main, revision.sub, entry.tombstone, *fields))

    # --8<-- [end:history]

    def __delitem__(self, revision: Revision) -> None:
        if not self._backend.write(_DELETE, (revision.main, revision.sub)).rowcount:
            raise KeyError(revision)

    def __contains__(self, revision: object) -> bool:
        if not isinstance(revision, Revision):
            return False
        found = self._connection.execute(_CONTAINS, (revision.main, revision.sub)).fetchone()
        return found is not None

    def __len__(self) -> int:
        count: int = self._connection.execute("SELECT count(*) FROM kv").fetchone()[0]
        return count

    def __iter__(self) -> Iterator[Revision]:
        for main, sub in self._connection.execute(_KEYS):
            yield Revision(main, sub)

    def items(self) -> ItemsView[Revision, HistoryEntry]:
        """The rows as ``(Revision, HistoryEntry)``, read by one query (not one per key)."""
        return _Items(self)

    def values(self) -> ValuesView[HistoryEntry]:
        return _Values(self)

    def items_from(self, main: int) -> Iterator[tuple[Revision, HistoryEntry]]:
        """The rows from main revision ``main`` on, by one query that starts there (a watch
        catching up reads only the history it missed: chapter 8)."""
        # fetchall: the apply loop may write to the table before a lazy reader resumes.
        for row_main, sub, *columns in self._connection.execute(_ROWS_FROM, (main,)).fetchall():
            yield Revision(row_main, sub), _entry(tuple(columns))

    def index_rows(self) -> Iterator[IndexRow]:
        """What rebuilding the key index needs of each row, in revision order, by one query
        that leaves the values on disk (a restart reads none: `kv.mvcc.store.IndexedHistory`)."""
        rows: Iterator[IndexRow] = iter(self._connection.execute(_INDEX_ROWS))
        return rows

    def _rows(self) -> Iterator[tuple[Revision, HistoryEntry]]:
        for main, sub, *columns in self._connection.execute(_ROWS):
            yield Revision(main, sub), _entry(tuple(columns))

    def _values(self) -> Iterator[HistoryEntry]:
        for row in self._connection.execute(_VALUES):
            yield _entry(row)


class _Items(ItemsView[Revision, HistoryEntry]):
    def __init__(self, history: History) -> None:
        super().__init__(history)
        self._history = history

    def __iter__(self) -> Iterator[tuple[Revision, HistoryEntry]]:
        return self._history._rows()


class _Values(ValuesView[HistoryEntry]):
    def __init__(self, history: History) -> None:
        super().__init__(history)
        self._history = history

    def __iter__(self) -> Iterator[HistoryEntry]:
        return self._history._values()


__all__ = ["History"]
