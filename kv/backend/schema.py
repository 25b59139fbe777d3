"""The backend's tables: the schema of ``<data-dir>/member/snap/db`` (chapter 2).

etcd keeps what its state machine has applied in a bbolt file, ``<data-dir>/member/snap/db``:
a "key" bucket maps each revision to the `KeyValue` written there, and a "meta" bucket holds the
*consistent index* (the index of the last log entry whose effects are in the file) and the
compaction state (``mvcc/backend``; ``mvcc/kvstore.go``: ``saveIndex``, ``restore``). kv keeps the
same things in the same place, in SQLite, so that a reader can look inside with the ``sqlite3``
shell::

    sqlite3 default.etcd/member/snap/db "SELECT main, sub, tombstone, key, value, version FROM kv"

* Table ``kv`` is the key bucket: one row per `Revision` ``(main, sub)``, holding the fields of
  the `KeyValue` as plain columns (not protobuf, so the file stays readable) and whether the
  row is a tombstone. `Backend.history` shows it to `kv.mvcc.Store` as the mapping
  ``Revision -> HistoryEntry`` the store expects, iterating in revision order.
* Table ``meta`` is the meta bucket: ``consistent_index``, ``compact_revision`` (the finished
  compaction, -1 if none) and ``scheduled_compact_revision``.
* Table ``lease`` is the lease bucket (chapter 7): each granted lease's ID and TTL, and the
  remaining TTL its last checkpoint recorded if checkpoints are persisted (0 if not). Which keys
  a lease has is not stored here: each key's row says its lease, and the lessor is rebuilt
  from both at start (etcd: ``lessor.initAndRecover`` and the store's ``restore``).
* Table ``alarm`` is the alarm bucket: one row per raised alarm, the member (in hex, as etcd
  prints member ids) and the alarm's name (``NOSPACE``). Alarms are applied from the log like
  any write, so they are committed with the consistent index and survive a restart.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kv.backend.errors import BackendError

CONSISTENT_INDEX = "consistent_index"
COMPACT_REVISION = "compact_revision"
SCHEDULED_COMPACT_REVISION = "scheduled_compact_revision"

# --8<-- [start:schema]
SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    main INTEGER NOT NULL,             -- revision: the write request
    sub INTEGER NOT NULL,              -- revision: the operation inside it
    tombstone INTEGER NOT NULL,        -- 1: a delete; the row then holds only the key
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL,
    PRIMARY KEY (main, sub)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alarm (
    member_id TEXT NOT NULL,           -- the member that raised it, in hex (etcdctl's form)
    alarm TEXT NOT NULL,               -- NOSPACE or CORRUPT (etcdserverpb.AlarmType)
    PRIMARY KEY (member_id, alarm)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS member (
    id TEXT PRIMARY KEY,               -- the member id, in hex (etcdctl's form)
    record TEXT NOT NULL               -- etcd's JSON form of the member (kv.server.applied.members)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cluster (
    name TEXT PRIMARY KEY,             -- clusterVersion (etcd's bucket "cluster")
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS member_removed (
    id TEXT PRIMARY KEY                -- a removed member id: it may never come back
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY,            -- the lease ID, any int64 but 0 (chapter 7)
    ttl INTEGER NOT NULL,              -- the TTL granted, in seconds (etcd: leasepb.Lease)
    remaining_ttl INTEGER NOT NULL DEFAULT 0  -- its last persisted checkpoint; 0 = none
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES
    ('consistent_index', 0),
    ('compact_revision', -1),
    ('scheduled_compact_revision', -1);
"""
# --8<-- [end:schema]


def add_checkpoint_column(connection: sqlite3.Connection) -> None:
    """A file written before kv had lease checkpoints has no ``remaining_ttl`` column: add it
    (every lease without a checkpoint), so that old data dirs open as they are."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(lease)")}
    if "remaining_ttl" not in columns:
        connection.execute("ALTER TABLE lease ADD COLUMN remaining_ttl INTEGER NOT NULL DEFAULT 0")


def require_kv_tables(connection: sqlite3.Connection, name: Path) -> None:
    """Refuse a file without the ``kv`` and ``meta`` tables (a bbolt file from etcd, another
    SQLite database), naming ``name``.
    """
    found = connection.execute(
        "SELECT count(*) FROM sqlite_schema WHERE name IN ('kv', 'meta')"
    ).fetchone()[0]
    if found != 2:
        raise BackendError(f"{name}: not a kv snapshot: no kv and meta tables")


__all__ = [
    "COMPACT_REVISION",
    "CONSISTENT_INDEX",
    "SCHEDULED_COMPACT_REVISION",
    "SCHEMA",
    "add_checkpoint_column",
    "require_kv_tables",
]
