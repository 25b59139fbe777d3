"""Snapshot files: where the log can start again (chapter 2).

Every ``--snapshot-count`` applied entries, the member records that the backend now holds
everything up to some log index, so the write-ahead log before that index is no longer needed
(`kv.wal.WAL.release_to`). The record is a small ``.snap`` file under ``member/snap/``, named
as etcd names it, ``<term>-<index>.snap`` in 16 hex digits each, holding a ``raftpb.Snapshot``
(its metadata: index, term, membership) framed with a CRC-32C so that a torn file is noticed.
The data itself is the backend file next to it (``member/snap/db``), as in etcd 3.4.

Loading picks the newest snapshot that reads back intact; a broken one is skipped with a
warning, never trusted (etcd: ``etcdserver/api/snap/snapshotter.go``).
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import crc32c

from kv.api.raftpb import raft_pb2
from kv.fsutil import fsync_dir, write_atomically

SUFFIX = ".snap"
DEFAULT_MAX_SNAPSHOTS = 5  # etcd's --max-snapshots
_HEADER = struct.Struct("<I")  # the CRC-32C of the snapshot bytes that follow

log = logging.getLogger(__name__)


def snapshot_name(term: int, index: int) -> str:
    return f"{term:016x}-{index:016x}{SUFFIX}"


class Snapshotter:
    """Saves, loads and prunes the ``.snap`` files of one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, snapshot: raft_pb2.Snapshot) -> Path:
        """Write ``snapshot`` durably under its etcd name; return the path."""
        data = snapshot.SerializeToString()
        path = self.directory / snapshot_name(snapshot.metadata.term, snapshot.metadata.index)
        write_atomically(path, _HEADER.pack(crc32c.crc32c(data)) + data)
        return path

    def load(self) -> raft_pb2.Snapshot | None:
        """The newest snapshot that reads back intact, or None if there is none."""
        for path in reversed(self.files()):
            snapshot = _read(path)
            if snapshot is not None:
                return snapshot
            log.warning("skipping broken snapshot file %s", path)
        return None

    def files(self) -> list[Path]:
        """The ``.snap`` files, oldest first (the names sort by term, then index)."""
        return sorted(self.directory.glob("*" + SUFFIX))

    def purge(self, keep: int = DEFAULT_MAX_SNAPSHOTS) -> list[Path]:
        """Delete all but the newest ``keep`` snapshot files; return what was deleted."""
        files = self.files()
        doomed = files[: max(0, len(files) - keep)]
        for path in doomed:
            path.unlink()
        if doomed:
            fsync_dir(self.directory)
        return doomed


def _read(path: Path) -> raft_pb2.Snapshot | None:
    raw = path.read_bytes()
    if len(raw) < _HEADER.size:
        return None
    (crc,) = _HEADER.unpack_from(raw)
    data = raw[_HEADER.size :]
    if crc32c.crc32c(data) != crc:
        return None
    return raft_pb2.Snapshot.FromString(data)
