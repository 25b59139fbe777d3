"""The backend: the applied MVCC state on disk, in SQLite (chapter 2).

Theory of operation
-------------------
The file and its tables, etcd's buckets, are described in `kv.backend.schema`.

Writes go into a *batch*: one open SQLite transaction, begun by the first write. `commit` ends
it together with the new consistent index, atomically (etcd: the batch transaction saves the
consistent index with the data it covers). So the file always holds exactly the state after
some log entry ``consistent_index``, never half of one. Restart opens the backend, rebuilds
the store from `Backend.history`, and replays the write-ahead log after ``consistent_index``.

Compaction is the one change etcd spreads over several batches, and it records its progress:
``scheduled_compact_revision`` before deleting, ``compact_revision`` after. If a crash comes
in between, `Backend.open` finishes the compaction before anyone reads the history. This
mattered beyond tidiness while compacting at a revision that wrote a tombstone deleted the
newest row (etcd #18089, as kv did before it kept that tombstone; files written then remain):
a file caught mid-compaction could end below the revision the store had reached, and a
restart that took the newest row as the current revision went back in time (etcd issue
#17780). Once `open` has finished the compaction, ``compact_revision`` is at least every
revision it removed, so a store that starts at ``max(newest row, compact_revision)``, as etcd's
``restore`` does, cannot go back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from types import TracebackType

from kv.backend.errors import BackendError, BackendFullError
from kv.backend.history import History
from kv.backend.schema import (
    COMPACT_REVISION,
    CONSISTENT_INDEX,
    SCHEDULED_COMPACT_REVISION,
    SCHEMA,
    add_checkpoint_column,
)
from kv.backend.snapshot_copy import check_is_backend, checked_snapshot_copy, copy_database
from kv.backend.summary import hash_tables
from kv.fsutil import fsync_path

# After a checkpoint empties the -wal file, cut it back to this size rather than keep the
# largest size it ever reached (one huge transaction, or a VACUUM, writes the whole database).
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024

_GET_META = "SELECT value FROM meta WHERE name = ?"
_SET_META = "UPDATE meta SET value = ? WHERE name = ?"
_ALARMS = "SELECT member_id, alarm FROM alarm ORDER BY member_id, alarm"
_ADD_ALARM = "INSERT OR IGNORE INTO alarm VALUES (?, ?)"
_REMOVE_ALARM = "DELETE FROM alarm WHERE member_id = ? AND alarm = ?"
_MEMBERS = "SELECT id, record FROM member ORDER BY id"
_PUT_MEMBER = "INSERT OR REPLACE INTO member VALUES (?, ?)"
_DELETE_MEMBER = "DELETE FROM member WHERE id = ?"
_REMOVED_MEMBERS = "SELECT id FROM member_removed ORDER BY id"
_ADD_REMOVED_MEMBER = "INSERT OR IGNORE INTO member_removed VALUES (?)"

# --8<-- [start:finish-compaction]
# What compaction at revision ?1 drops, stated over the rows (kv.mvcc.KeyIndex.compact states it
# over generations): of each key's rows at or below it, a put stays only if it is the newest (a
# read at ?1 returns it), a tombstone only if it is at ?1 itself (a watch from ?1 sees that
# delete: etcd #18089). Everything above it stays.
_COMPACT = """
DELETE FROM kv WHERE (main, sub) IN (
    SELECT main, sub FROM (
        SELECT main, sub, tombstone,
               row_number() OVER (PARTITION BY key ORDER BY main DESC, sub DESC) AS newness
        FROM kv WHERE main <= ?1
    )
    WHERE CASE WHEN tombstone THEN main < ?1 ELSE newness > 1 END
)
"""
# --8<-- [end:finish-compaction]


class Backend:
    """The applied state in ``<data-dir>/member/snap/db``: history, consistent index, compaction.

    Example::

        backend = Backend.open(data_dir / "member" / "snap" / "db")
        store = Store(backend.history, compact_revision=backend.compact_revision)
        store.put(b"k", b"v")  # the write joins the open batch
        backend.commit(consistent_index=7)  # the data and "entry 7 is applied", atomically

    Not thread-safe: one caller at a time (the apply loop), from any thread.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        """Wrap an open, initialized connection; use `Backend.open`."""
        self.path = path
        self._connection = connection
        self.history = History(self, connection)
        self._consistent_index = self._meta(CONSISTENT_INDEX)
        #: `size_bytes` and `size_in_use_bytes` as of the last commit (measured by each
        #: commit, not when asked).
        self._size, self._size_in_use = self._file_sizes()
        #: Writes in the batch begun last (`pending_writes`).
        self._pending = 0

    # --8<-- [start:open]
    @classmethod
    def open(cls, path: Path, *, max_size_bytes: int | None = None) -> Backend:
        """Open the backend at ``path``, creating the file, its directory and schema if new.

        A compaction that a crash interrupted is finished here (see the module docstring).
        ``max_size_bytes`` caps the file as a disk of that size would: a write beyond it raises
        `BackendFullError`. (The space quota and its alarm are the server's business.)
        """
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; the batch's BEGIN/COMMIT are ours.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            # Durability comes from kv's own write-ahead log, not from here. In WAL mode with
            # synchronous=NORMAL a commit is appended to the -wal file without an fsync: a
            # power cut may lose the last few commits, but each commit is atomic, so the file
            # comes back as it was after some commit -- its data and the consistent index
            # that commit wrote, together. Recovery replays kv's WAL (fsynced before an entry
            # is applied) from that index on, so a lost commit is only replayed, never lost.
            # What must not happen is releasing log segments the backend may still need:
            # `sync` makes everything committed durable first (etcd: the backend is committed
            # and the snapshot saved before the WAL is released, etcdserver/server.go).
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise BackendError(f"{path}: SQLite cannot use WAL mode here ({mode})")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            connection.executescript(f"BEGIN IMMEDIATE; {SCHEMA}; COMMIT;")
            add_checkpoint_column(connection)
            if max_size_bytes is not None:
                page_size = connection.execute("PRAGMA page_size").fetchone()[0]
                connection.execute(f"PRAGMA max_page_count={max_size_bytes // page_size}")
            backend = cls(path, connection)
            backend._finish_interrupted_compaction()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise BackendError(f"{path}: not a kv backend: {error}") from error
        except BaseException:
            connection.close()
            raise
        return backend

    # --8<-- [end:open]

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def consistent_index(self) -> int:
        """The index of the last log entry whose effects are committed in the file."""
        return self._consistent_index

    @property
    def compact_revision(self) -> int:
        """The revision of the last finished compaction, -1 if none (as the batch sees it)."""
        return self._meta(COMPACT_REVISION)

    @property
    def scheduled_compact_revision(self) -> int:
        """The revision of the last compaction begun, -1 if none (as the batch sees it)."""
        return self._meta(SCHEDULED_COMPACT_REVISION)

    @property
    def in_batch(self) -> bool:
        """True while the batch holds writes that are not committed yet."""
        return self._connection.in_transaction

    @property
    def pending_writes(self) -> int:
        """How many writes the open batch holds (etcd's batch transaction counts its puts and
        deletes so, to commit once it holds ``--backend-batch-limit`` of them)."""
        return self._pending if self.in_batch else 0

    def schedule_compaction(self, revision: int) -> None:
        """Record in the batch that compaction at ``revision`` begins (before its deletes).

        Commit this before the deletes if compaction spans several batches, as etcd does
        (``updateCompactRev`` then ``ForceCommit``): that is what lets `open` finish it.
        """
        self.write(_SET_META, (revision, SCHEDULED_COMPACT_REVISION))

    def finish_compaction(self, revision: int) -> None:
        """Record in the batch that compaction at ``revision`` is done (after its deletes)."""
        self.write(_SET_META, (revision, COMPACT_REVISION))

    def alarms(self) -> list[tuple[int, str]]:
        """The raised alarms as ``(member id, alarm name)`` (as the batch sees them)."""
        rows = self._connection.execute(_ALARMS).fetchall()
        return [(int(member, 16), alarm) for member, alarm in rows]

    def add_alarm(self, member_id: int, alarm: str) -> None:
        """Record in the batch that ``member_id`` raised ``alarm`` (a no-op if it is there)."""
        self.write(_ADD_ALARM, (f"{member_id:x}", alarm))

    def remove_alarm(self, member_id: int, alarm: str) -> None:
        """Record in the batch that the alarm is cleared (a no-op if it was not raised)."""
        self.write(_REMOVE_ALARM, (f"{member_id:x}", alarm))

    def members(self) -> list[tuple[int, str]]:
        """The cluster's members as ``(member id, JSON record)`` (chapter 5), as the batch sees
        them."""
        rows = self._connection.execute(_MEMBERS).fetchall()
        return [(int(member, 16), record) for member, record in rows]

    def removed_members(self) -> set[int]:
        """The ids of removed members (etcd keeps them so that they can never rejoin)."""
        return {int(row[0], 16) for row in self._connection.execute(_REMOVED_MEMBERS)}

    def put_member(self, member_id: int, record: str) -> None:
        """Record in the batch that ``member_id`` is a member, described by ``record``."""
        self.write(_PUT_MEMBER, (f"{member_id:x}", record))

    def cluster_version(self) -> str:
        """The cluster's version once the leader decided it ("" before), as the batch sees it."""
        row = self._connection.execute(
            "SELECT value FROM cluster WHERE name = 'clusterVersion'"
        ).fetchone()
        return str(row[0]) if row else ""

    def set_cluster_version(self, version: str) -> None:
        self.write("INSERT OR REPLACE INTO cluster VALUES ('clusterVersion', ?)", (version,))

    def forget_members(self) -> None:
        """Record in the batch that there are no members, removed ones included (a restore
        makes a new cluster out of an old one's data)."""
        self.write("DELETE FROM member", ())
        self.write("DELETE FROM member_removed", ())

    def remove_member(self, member_id: int) -> None:
        """Record in the batch that ``member_id`` left the cluster, for good."""
        self.write(_DELETE_MEMBER, (f"{member_id:x}",))
        self.write(_ADD_REMOVED_MEMBER, (f"{member_id:x}",))

    def leases(self) -> list[tuple[int, int]]:
        """The granted leases as ``(lease ID, TTL)``, by ID (chapter 7), as the batch sees them."""
        rows = self._connection.execute("SELECT id, ttl FROM lease ORDER BY id").fetchall()
        return [(int(lease_id), int(ttl)) for lease_id, ttl in rows]

    def put_lease(self, lease_id: int, ttl: int) -> None:
        """Record in the batch that lease ``lease_id`` was granted for ``ttl`` seconds."""
        self.write("INSERT OR REPLACE INTO lease (id, ttl) VALUES (?, ?)", (lease_id, ttl))

    def lease_checkpoints(self) -> dict[int, int]:
        """The remaining TTL of each lease whose record holds a checkpoint (chapter 7)."""
        rows = self._connection.execute(
            "SELECT id, remaining_ttl FROM lease WHERE remaining_ttl != 0"
        ).fetchall()
        return {int(lease_id): int(remaining) for lease_id, remaining in rows}

    def checkpoint_lease(self, lease_id: int, remaining_ttl: int) -> None:
        """Record in the batch a checkpoint of lease ``lease_id`` (0 clears it)."""
        self.write("UPDATE lease SET remaining_ttl = ? WHERE id = ?", (remaining_ttl, lease_id))

    def delete_lease(self, lease_id: int) -> None:
        """Record in the batch that lease ``lease_id`` was revoked."""
        self.write("DELETE FROM lease WHERE id = ?", (lease_id,))

    # --8<-- [start:commit]
    def commit(self, consistent_index: int) -> None:
        """End the batch: its writes and ``consistent_index`` reach the file together or not at all.

        Raises:
            ValueError: ``consistent_index`` is below the committed one.
            BackendFullError: the disk is full; the batch was rolled back.
        """
        if consistent_index < self._consistent_index:
            raise ValueError(
                f"consistent index {consistent_index} is below {self._consistent_index}"
            )
        if consistent_index == self._consistent_index and not self.in_batch:
            return
        self.write(_SET_META, (consistent_index, CONSISTENT_INDEX))
        try:
            self._connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise self._rolled_back(error) from error
        self._consistent_index = consistent_index
        self._size, self._size_in_use = self._file_sizes()

    # --8<-- [end:commit]

    def rollback(self) -> None:
        """Drop the batch: the file keeps the state of the last commit."""
        if self.in_batch:
            self._connection.execute("ROLLBACK")

    @property
    def size_bytes(self) -> int:
        """The database size, free pages included: what etcd's Status reports as dbSize.

        As of the last commit, as etcd's backend keeps it (an atomic set at each commit of
        its batch): the quota asks for it twice per write, and a query each time cost a
        put about 60 µs of CPU. The server keeps its batch open for up to
        ``--backend-batch-interval`` (`kv.server.replica.batching`), so the size lags the
        writes by as much, as etcd's does. (Measured when asked, on this connection, it
        would count the open batch's pages too.)
        """
        return self._size

    @property
    def size_in_use_bytes(self) -> int:
        """The database size without free pages: what etcd's Status reports as dbSizeInUse.

        As of the last commit, as `size_bytes` (etcd sets both when it commits)."""
        return self._size_in_use

    def defragment(self) -> None:
        """Rewrite the file without its free pages and give them back to the file system.

        Compaction frees pages but the file keeps them for reuse, as bbolt does; this is what
        ``etcdctl defrag`` asks for. SQLite's VACUUM rebuilds the database (into the -wal
        file, in WAL mode); the checkpoint then copies it into the main file, truncates that
        file to its new size and empties the -wal file.

        Raises:
            BackendError: a batch is open (commit or roll it back first).
            BackendFullError: there is no room for the rebuilt copy; nothing changed.
        """
        self._require_no_batch("defragmenting")
        try:
            self._connection.execute("VACUUM")
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            raise self._rolled_back(error) from error
        finally:
            self._size, self._size_in_use = self._file_sizes()

    def sync(self) -> None:
        """Make everything committed durable: checkpoint, then fsync the files and directory.

        Call before releasing write-ahead log segments: once they are gone, a crash can no
        longer be repaired by replaying them, so the backend must already hold their effects.
        """
        self._require_no_batch("syncing")
        # A passive checkpoint never waits: a reader (the sqlite3 shell) may hold old pages,
        # and then part of the data stays in the -wal file. Fsyncing both files covers that.
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        wal = self.path.with_name(self.path.name + "-wal")
        for committed in (self.path, wal):
            with contextlib.suppress(FileNotFoundError):
                fsync_path(committed)
        fsync_path(self.path.parent)

    def snapshot_to(self, path: Path) -> None:
        """Write a consistent copy of the last commit to ``path``, fsynced (`etcdctl snapshot`).

        The copy is read through a connection of its own, so it holds committed data only
        (never half of an open batch) together with the consistent index that covers it. It
        is written beside ``path`` and renamed into place, so ``path`` is whole or absent.
        """
        partial = path.with_name(path.name + ".part")
        partial.unlink(missing_ok=True)
        copy_database(self.path, partial)
        os.replace(partial, path)
        fsync_path(path.parent)

    @classmethod
    def restore_from(
        cls,
        snapshot: Path,
        path: Path,
        *,
        consistent_index: int,
        skip_hash_check: bool = False,
    ) -> Backend:
        """Create the backend at ``path`` from a snapshot file, for ``kv snapshot restore``.

        A snapshot saved by ``etcdctl snapshot save`` ends with the SHA-256 of its data, cut off
        and checked by `checked_snapshot_copy`. This is for kv's own SQLite snapshots (from kv
        before it saved etcd's format, or a copy of a ``member/snap/db``); etcd's bbolt
        snapshots are restored by ``kv.server.disk.etcd_db.restore_etcd_db``. The restored
        member starts a new log, so the snapshot's consistent index (an index in the old
        member's log) is replaced by ``consistent_index``: etcd sets it to the number
        of entries that bootstrap the new log. Everything else, alarms included, is kept.

        Raises:
            FileNotFoundError: ``snapshot`` does not exist.
            SnapshotHashError: the hash is missing or does not match (etcd's messages).
            BackendError: ``path`` exists, or the file is not a kv backend.
        """
        partial = checked_snapshot_copy(snapshot, path, skip_hash_check=skip_hash_check)
        try:
            check_is_backend(partial, snapshot)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
        backend = cls.open(path)
        backend.write(_SET_META, (consistent_index, CONSISTENT_INDEX))
        backend._connection.execute("COMMIT")
        backend._consistent_index = consistent_index
        backend.sync()
        return backend

    def hash(self) -> int:
        """etcd's ``Maintenance.Hash``: `summarize_file`'s hash of this backend, without the
        consistent index (etcd ignores it: ``mvcc.DefaultIgnores``), as the batch sees it."""
        return hash_tables(self._connection, ignore_consistent_index=True)

    def close(self) -> None:
        """Close the file. An open batch is dropped, as a crash would drop it."""
        self.rollback()
        self._connection.close()

    # --8<-- [start:write]
    def write(self, sql: str, parameters: tuple[object, ...]) -> sqlite3.Cursor:
        """Run one write in the batch, beginning the batch if none is open."""
        connection = self._connection
        try:
            if not connection.in_transaction:
                # IMMEDIATE: take the write lock now, so the batch cannot fail on it halfway.
                connection.execute("BEGIN IMMEDIATE")
                self._pending = 0
            self._pending += 1
            return connection.execute(sql, parameters)
        except sqlite3.Error as error:
            raise self._rolled_back(error) from error

    def _rolled_back(self, error: sqlite3.Error) -> BackendError:
        """Roll the batch back after ``error`` (SQLite may have done so already); say why."""
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")
        # Extended result codes keep the primary code in the low byte.
        if getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
            return BackendFullError(f"{self.path}: {error}; the batch was rolled back")
        return BackendError(f"{self.path}: {error}; the batch was rolled back")

    # --8<-- [end:write]

    def _finish_interrupted_compaction(self) -> None:
        scheduled = self.scheduled_compact_revision
        if scheduled <= self.compact_revision:
            return
        self.write(_COMPACT, (scheduled,))
        self.finish_compaction(scheduled)
        self.commit(self._consistent_index)

    def _meta(self, name: str) -> int:
        value: int = self._connection.execute(_GET_META, (name,)).fetchone()[0]
        return value

    def _file_sizes(self) -> tuple[int, int]:
        """The database's size and its size without free pages, now; with no batch open,
        the last commit's."""
        size, in_use = self._connection.execute(
            "SELECT c.page_count * s.page_size, (c.page_count - f.freelist_count) * s.page_size "
            "FROM pragma_page_count() AS c, pragma_freelist_count() AS f, pragma_page_size() AS s"
        ).fetchone()
        return int(size), int(in_use)

    def _require_no_batch(self, doing: str) -> None:
        if self.in_batch:
            raise BackendError(f"commit or roll back the batch before {doing}")


__all__ = ["Backend"]
