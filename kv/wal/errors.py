"""What the write-ahead log raises: `WalError` and the ways reading a log back fails (chapter 2)."""

from __future__ import annotations

from pathlib import Path


class WalError(Exception):
    """Base class of the WAL's errors."""


class WalCorruptError(WalError):
    """A record that was once written whole is damaged, or a segment is missing.

    ``path`` and ``offset`` say where: the file, and the byte offset of the frame that failed.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"wal: corrupt record in {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class WalNotFoundError(WalError):
    """No segment holds the requested snapshot's index (etcd: ``ErrFileNotFound``)."""


class WalSnapshotNotFoundError(WalError):
    """The log has no marker for the requested snapshot (etcd: ``ErrSnapshotNotFound``)."""


class WalSnapshotMismatchError(WalError):
    """The log's marker for the snapshot's index has another term (``ErrSnapshotMismatch``)."""


__all__ = [
    "WalCorruptError",
    "WalError",
    "WalNotFoundError",
    "WalSnapshotMismatchError",
    "WalSnapshotNotFoundError",
]
