"""A member's Raft state on disk: the chapter 2 WAL and snapshot files hold Raft's log (chapter 5).

Raft asks the application to persist three things (Figure 2, "Persistent state on all
servers"), and this module is where each one goes, as in etcd (``etcdserver/storage.go``):

* **entries** -- ENTRY records of the write-ahead log (`kv.wal`);
* **the hard state** (term, vote, commit) -- STATE records of the same log, after the
  entries they belong with, so one fsync covers both;
* **snapshots** -- a ``.snap`` file with the snapshot's metadata (index, term, configuration)
  and a SNAPSHOT record in the log marking where it stands. The state machine's data is the
  backend itself (``member/snap/db``): a snapshot does not copy it, it records that the
  backend holds everything up to the snapshot's index once `kv.backend.Backend.sync` made it
  durable. A snapshot that comes from the leader carries the leader's backend; it is written
  to ``member/snap/<index>.snap.db`` first and swapped into place (`install_backend`).

The core reads its stable state through a `kv.raft.MemoryStorage` that mirrors the disk (etcd
does the same): entries are appended to it only after they are written, and on restart it is
rebuilt from the newest snapshot and the log after it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kv.api.etcdserverpb.etcdserver_pb2 import Metadata
from kv.api.walpb import record_pb2
from kv.fsutil import fsync_dir
from kv.raft import (
    ConfState,
    HardState,
    MemoryStorage,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SnapshotOutOfDateError,
)
from kv.server import raft_wire
from kv.server.disk.fsync_thread import FsyncThread
from kv.server.flag_values import format_go_duration
from kv.server.metrics.histogram import DISK_BUCKETS, Histogram
from kv.server.wire_bytes import EntryEncodings
from kv.snap import Snapshotter
from kv.wal import WAL

log = logging.getLogger(__name__)

#: An fsync of the WAL slower than this is logged (etcd: wal.go ``warnSyncDuration``).
SLOW_FSYNC_NS = 1_000_000_000

#: Entries kept in the log behind a snapshot, so a follower a little behind catches up from
#: the log rather than needing the whole backend (etcd: SnapshotCatchUpEntries).
SNAPSHOT_CATCH_UP_ENTRIES = 5000


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """When to snapshot and how much to keep: etcd's --snapshot-count, --max-wals and
    --max-snapshots (0 keeps every file)."""

    snapshot_count: int = 100_000
    max_wals: int = 5
    max_snapshots: int = 5


def received_backend_path(snap_dir: Path, index: int) -> Path:
    """Where a backend received in a leader's snapshot waits to be swapped in (etcd's name)."""
    return snap_dir / f"{index:016x}.snap.db"


@dataclass(slots=True)
class RaftDisk:
    """The WAL, the snapshot files and the `MemoryStorage` that mirrors them."""

    wal: WAL
    snapshotter: Snapshotter
    storage: MemoryStorage
    member_id: int
    cluster_id: int
    #: How long each fsync of the WAL took (chapter 10: etcd_disk_wal_fsync_duration_seconds).
    fsync_seconds: Histogram = field(default_factory=lambda: Histogram(DISK_BUCKETS))
    #: Seconds added to each fsync: a slow disk, set through the fault hook (chapter 10).
    fsync_delay: float = 0.0
    #: Where `persist` runs the fsync, so the event loop serves on meanwhile.
    fsync_thread: FsyncThread = field(init=False)
    #: Each entry's encoding, made once for the WAL and the peers' MsgApps (`kv.server.wire_bytes`).
    encodings: EntryEncodings = field(default_factory=EntryEncodings)

    def __post_init__(self) -> None:
        self.fsync_thread = FsyncThread(self._fsync)

    # --8<-- [start:open]
    @classmethod
    def open(cls, wal_dir: Path, snap_dir: Path) -> RaftDisk:
        """Read back a member's Raft state: the newest snapshot, then the log after it."""
        snap_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        snapshotter = Snapshotter(snap_dir)
        snapshot = snapshotter.load()
        storage = MemoryStorage()
        marker = None
        if snapshot is not None:
            marker = record_pb2.Snapshot(index=snapshot.metadata.index, term=snapshot.metadata.term)
            storage.apply_snapshot(raft_wire.snapshot_from_pb(snapshot))
        wal, contents = WAL.open(wal_dir, marker)
        storage.append([raft_wire.entry_from_pb(entry) for entry in contents.entries])
        storage.set_hard_state(raft_wire.hard_state_from_pb(contents.state))
        metadata = Metadata.FromString(contents.metadata)
        return cls(wal, snapshotter, storage, metadata.NodeID, metadata.ClusterID)

    # --8<-- [end:open]

    @classmethod
    def create(cls, wal_dir: Path, snap_dir: Path, member_id: int, cluster_id: int) -> RaftDisk:
        """A new member's empty log, stamped with its ids."""
        snap_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        metadata = Metadata(NodeID=member_id, ClusterID=cluster_id)
        wal = WAL.create(wal_dir, metadata.SerializeToString())
        return cls(wal, Snapshotter(snap_dir), MemoryStorage(), member_id, cluster_id)

    @property
    def snapshot_index(self) -> int:
        return self.storage.snapshot().metadata.index

    # --8<-- [start:persist]
    async def persist(self, ready: Ready) -> None:
        """Step 1 of the Ready contract: make the Ready's snapshot, entries and hard state
        durable (fsync when ``must_sync``), then show them to the core through storage."""
        if ready.snapshot is not None:
            self._save_received_snapshot(ready.snapshot)
        self.wal.save(
            self.encodings.for_wal(ready.entries),
            raft_wire.hard_state_to_pb(ready.hard_state) if ready.hard_state else None,
        )
        if ready.must_sync:
            await self.fsync_thread.run()  # the event loop serves on meanwhile
        self.storage.append(ready.entries)
        if ready.hard_state is not None:
            self.storage.set_hard_state(ready.hard_state)

    # --8<-- [end:persist]

    def _fsync(self) -> None:
        """Sync the WAL, timed in the fsync thread itself: the fsync's own latency, without
        the wait for the event loop to take the answer back (chapter 10)."""
        started = time.monotonic_ns()
        with self.fsync_seconds.time():
            if self.fsync_delay:
                time.sleep(self.fsync_delay)  # the slow disk the fault hook asked for
            self.wal.sync()
        took = time.monotonic_ns() - started
        if took > SLOW_FSYNC_NS:  # etcd 3.4's wal.go warns in these words (capnslog)
            log.warning(
                "sync duration of %s, expected less than %s",
                format_go_duration(took),
                format_go_duration(SLOW_FSYNC_NS),
            )

    def _save_received_snapshot(self, snapshot: Snapshot) -> None:
        """A leader's snapshot: its backend to a side file, then the .snap file and marker."""
        metadata = snapshot.metadata
        if snapshot.data:
            path = received_backend_path(self.snapshotter.directory, metadata.index)
            with path.open("wb") as file:
                file.write(snapshot.data)
                file.flush()
                os.fsync(file.fileno())
            fsync_dir(path.parent)
        self._record_snapshot(Snapshot(metadata=metadata))
        try:
            self.storage.apply_snapshot(Snapshot(metadata=metadata))
        except SnapshotOutOfDateError:
            log.warning("ignored an out-of-date snapshot at index %d", metadata.index)

    def _record_snapshot(self, snapshot: Snapshot) -> None:
        """The WAL marker first, then the .snap file: recovery opens the log at the newest
        .snap file, so its marker must already be in the log (etcd: saveSnap)."""
        metadata = snapshot.metadata
        self.wal.save_snapshot(record_pb2.Snapshot(index=metadata.index, term=metadata.term))
        self.snapshotter.save(raft_wire.snapshot_to_pb(snapshot))

    # --8<-- [start:snapshot]
    def snapshot(
        self,
        index: int,
        conf_state: ConfState,
        *,
        max_wals: int,
        max_snapshots: int,
        catch_up_entries: int = SNAPSHOT_CATCH_UP_ENTRIES,
    ) -> None:
        """Record a snapshot at applied ``index`` (the backend must already be synced), then
        let the log before it go, keeping ``catch_up_entries`` in memory for slow followers
        (a follower further behind gets the snapshot)."""
        metadata = SnapshotMetadata(
            conf_state=conf_state, index=index, term=self.storage.term(index)
        )
        self._record_snapshot(Snapshot(metadata=metadata))
        self.storage.create_snapshot(index, conf_state)
        compact_to = index - catch_up_entries
        if compact_to >= self.storage.first_index():
            self.storage.compact(compact_to)
        self.wal.release_to(index)
        released = self.wal.purge(max_wals) if max_wals else []
        if max_snapshots:  # etcd: 0 keeps every file
            self.snapshotter.purge(max_snapshots)
        log.info("saved snapshot at index %d; released %d WAL segment(s)", index, len(released))

    # --8<-- [end:snapshot]

    def cover(self, index: int, term: int, conf_state: ConfState) -> None:
        """Make the log start after ``index`` with a snapshot of what the backend holds.

        For a log that lost records the backend had already applied (a disk that dropped
        synced writes): without it the next entries would reuse indexes the backend counts
        as applied, and be skipped. ``term`` must be at least the lost entry's term.
        """
        metadata = SnapshotMetadata(conf_state=conf_state, index=index, term=term)
        self._record_snapshot(Snapshot(metadata=metadata))
        self.storage.apply_snapshot(Snapshot(metadata=metadata))
        state = self.storage.hard_state
        covered = HardState(term=max(state.term, term), vote=state.vote, commit=index)
        self.wal.save([], raft_wire.hard_state_to_pb(covered))
        self.wal.sync()
        self.storage.set_hard_state(covered)

    def close(self) -> None:
        self.fsync_thread.close()
        self.wal.close()
