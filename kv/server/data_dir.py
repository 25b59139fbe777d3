"""A member's data directory, and how a member comes back from it (chapter 2).

The layout is etcd's::

    <data-dir>/member/wal/0000000000000000-0000000000000000.wal   the write-ahead log
    <data-dir>/member/snap/db                                     the backend (SQLite here)
    <data-dir>/member/snap/0000000000000001-00000000000186a0.snap  snapshot markers
    <data-dir>/member/snap/db-snapshot-*.tmp                       a Snapshot RPC's copy, while
                                                                   it is being sent

Recovery, in order: open the backend and read its *consistent index* (the last log entry
whose effects it holds); load the newest intact snapshot marker; open the write-ahead log at
that marker, which repairs a torn tail and refuses real corruption; rebuild the store's key
index from the backend; replay the log entries after the consistent index. The member is then
exactly where it was when it last answered a client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kv.api.etcdserverpb.etcdserver_pb2 import Metadata
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.walpb import record_pb2
from kv.backend import Backend
from kv.mvcc import Store
from kv.server.alarms import AlarmStore
from kv.server.durable_log import DurableLog, SnapshotPolicy, commit_applied
from kv.server.state_machine import StateMachine
from kv.snap import Snapshotter
from kv.wal import WAL

log = logging.getLogger(__name__)

#: The name a Snapshot RPC's copy of the backend gets while it is streamed: ``db-snapshot-``,
#: something unique, ``.tmp`` (`Backend.snapshot_to` writes ``<name>.part`` before it).
SNAPSHOT_COPY_PREFIX = "db-snapshot-"
SNAPSHOT_COPY_SUFFIX = ".tmp"


@dataclass(frozen=True, slots=True)
class DataDir:
    """The paths of a data directory."""

    root: Path

    @property
    def wal(self) -> Path:
        return self.root / "member" / "wal"

    @property
    def snap(self) -> Path:
        return self.root / "member" / "snap"

    @property
    def backend(self) -> Path:
        return self.snap / "db"

    def has_wal(self) -> bool:
        return self.wal.is_dir() and any(self.wal.glob("*.wal"))

    def snapshot_copies(self) -> list[Path]:
        """Copies of the backend made for Snapshot RPCs (a crash mid-stream leaves them)."""
        return sorted(self.snap.glob(f"{SNAPSHOT_COPY_PREFIX}*{SNAPSHOT_COPY_SUFFIX}*"))


@dataclass(frozen=True, slots=True)
class Recovered:
    """A member back from its data directory: who it is, and its log, ready to serve."""

    member_id: int
    cluster_id: int
    log: DurableLog
    replayed: int  # log entries applied during recovery


# --8<-- [start:open_member]
def open_member(
    root: Path, *, member_id: int, cluster_id: int, policy: SnapshotPolicy
) -> Recovered:
    """Start a new member in ``root``, or recover the one whose data is there.

    A data directory belongs to one member: as etcd does on restart, the ids stored in the
    log win over the ones the flags would give (a restarted member ignores --initial-cluster).
    """
    layout = DataDir(root)
    layout.snap.mkdir(mode=0o700, parents=True, exist_ok=True)
    for leftover in layout.snapshot_copies():
        log.info("removing %s, left by a snapshot stream that did not finish", leftover)
        leftover.unlink()
    backend = Backend.open(layout.backend)
    snapshotter = Snapshotter(layout.snap)
    snapshot = snapshotter.load()
    snapshot_index = snapshot.metadata.index if snapshot is not None else 0
    if layout.has_wal():
        marker = None
        if snapshot is not None:
            marker = record_pb2.Snapshot(index=snapshot_index, term=snapshot.metadata.term)
        wal, contents = WAL.open(layout.wal, marker)
        metadata = Metadata.FromString(contents.metadata)
        member_id, cluster_id = metadata.NodeID, metadata.ClusterID
        entries = contents.entries
    else:
        metadata = Metadata(NodeID=member_id, ClusterID=cluster_id)
        wal = WAL.create(layout.wal, metadata.SerializeToString())
        entries = ()
    store = Store(backend.history, compact_revision=backend.compact_revision)
    machine = StateMachine(
        store, applied_index=backend.consistent_index, alarms=AlarmStore(backend)
    )
    replayed = sum(
        machine.apply(entry.Index, InternalRaftRequest.FromString(entry.Data)) is not None
        for entry in entries
    )
    commit_applied(backend, machine)
    last_index = max(
        [snapshot_index, backend.consistent_index, *(entry.Index for entry in entries)]
    )
    durable = DurableLog(
        wal=wal,
        backend=backend,
        snapshotter=snapshotter,
        machine=machine,
        last_index=last_index,
        snapshot_index=snapshot_index,
        policy=policy,
    )
    if backend.consistent_index > max([snapshot_index, *(entry.Index for entry in entries)]):
        # The backend holds entries the log no longer has (a repaired tail lost a record that
        # had been applied). Snapshot at the backend's index, so that the log goes on from
        # there instead of leaving a gap that the next start would refuse.
        durable.snapshot()
    return Recovered(member_id, cluster_id, durable, replayed)


# --8<-- [end:open_member]
