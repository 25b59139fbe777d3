"""A member's data directory: where each of its files lives (chapter 2).

The layout is etcd's::

    <data-dir>/member/wal/0000000000000000-0000000000000000.wal   the write-ahead log
    <data-dir>/member/snap/db                                     the backend (SQLite here)
    <data-dir>/member/snap/0000000000000001-00000000000186a0.snap  snapshot markers
    <data-dir>/member/snap/db-snapshot-*.tmp                       a Snapshot RPC's copy, while
                                                                   it is being sent

How a member comes back from these files is `kv.server.bootstrap` (the backend and its
consistent index, the state machine over it) and `kv.server.disk.raft_disk` (the newest snapshot
marker, then the write-ahead log after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The name a Snapshot RPC's copy of the backend gets while it is streamed: ``db-snapshot-``,
#: something unique, ``.tmp`` (`etcd_db.save_etcd_db` copies the backend to ``<name>.sqlite``
#: first).
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
