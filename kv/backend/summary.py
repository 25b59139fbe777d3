"""What ``etcdctl snapshot status`` and ``Maintenance.Hash`` say of a backend file (chapter 2).

`summarize_file` gives a file's `FileSummary` (hash, revision, keys, size) as etcd summarizes
a bbolt file; `hash_tables` is the hash, over every table (`Backend.hash` uses it too).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import crc32c

from kv.backend.errors import BackendError, integrity_error
from kv.backend.schema import CONSISTENT_INDEX, require_kv_tables


def _column_bytes(value: object) -> bytes:
    if isinstance(value, int):
        return value.to_bytes(8, "big", signed=True)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    return b""  # NULL (kv's tables have none); a REAL would be a foreign table


def _tables(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every table but SQLite's own, in name order: (name, the name quoted for SQL)."""
    names = connection.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [(name, '"' + name.replace('"', '""') + '"') for (name,) in names]


def hash_tables(connection: sqlite3.Connection, *, ignore_consistent_index: bool) -> int:
    """CRC-32C over every table, the way `summarize_file` describes."""
    crc = 0
    for table, quoted in _tables(connection):
        crc = crc32c.crc32c(table.encode(), crc)
        width = len(connection.execute(f"SELECT * FROM {quoted} LIMIT 0").description)
        order = ", ".join(str(column) for column in range(1, width + 1))
        for row in connection.execute(f"SELECT * FROM {quoted} ORDER BY {order}"):
            if ignore_consistent_index and table == "meta" and row[0] == CONSISTENT_INDEX:
                continue
            for value in row:
                crc = crc32c.crc32c(_column_bytes(value), crc)
    return crc


@dataclass(frozen=True, slots=True)
class FileSummary:
    """What ``etcdctl snapshot status`` reports of a database file (see `summarize_file`)."""

    hash: int
    revision: int
    total_keys: int
    total_size: int


def summarize_file(path: Path) -> FileSummary:
    """Summarize a backend or snapshot file as ``etcdctl snapshot status`` summarizes a bbolt one.

    etcd's columns (``clientv3/snapshot/v3_snapshot.go``, ``Status``), computed for SQLite:

    * **hash**: CRC-32C (Castagnoli, etcd's polynomial) over each table in name order: its
      name, then its rows in key order, each column as bytes (integers as 8 bytes big-endian,
      text as UTF-8, blobs as they are). etcd hashes each bucket's name, keys and values so.
      The consistent index is in table ``meta``, so a restored copy hashes differently.
    * **revision**: the highest revision in table ``kv`` (etcd: the last key of bucket
      ``key``); 0 when the table is empty.
    * **total keys**: the rows of all tables, ``meta`` and ``alarm`` included (etcd: the keys
      of all buckets).
    * **total size**: page count times page size, the database without the SHA-256 that
      ``snapshot save`` appends (etcd: the size of the bbolt file's pages).

    The file is opened read-only and immutable: nothing is written next to it.

    Raises:
        FileNotFoundError: there is no such file.
        BackendError: the file is not a kv backend, or fails SQLite's integrity check.
    """
    path.stat()  # FileNotFoundError with the path, as etcd's os.Stat
    uri = f"{path.absolute().as_uri()}?mode=ro&immutable=1"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise integrity_error(problems)
            require_kv_tables(connection, path)
            revision = connection.execute("SELECT coalesce(max(main), 0) FROM kv").fetchone()[0]
            total_keys = 0
            for _, quoted in _tables(connection):
                total_keys += connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
            page_count = connection.execute("PRAGMA page_count").fetchone()[0]
            page_size = connection.execute("PRAGMA page_size").fetchone()[0]
            crc = hash_tables(connection, ignore_consistent_index=False)
    except sqlite3.DatabaseError as error:
        raise BackendError(f"{path}: not a kv snapshot: {error}") from error
    return FileSummary(crc, revision, total_keys, page_count * page_size)


__all__ = ["FileSummary", "hash_tables", "summarize_file"]
