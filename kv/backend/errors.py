"""What the backend raises when it cannot do what was asked (chapter 2)."""

from __future__ import annotations


class BackendError(Exception):
    """The backend could not do what was asked. A failed write has rolled the batch back."""


class SnapshotHashError(BackendError):
    """A snapshot's SHA-256 is missing or wrong; the message is etcd's (``snapshot restore``)."""


class BackendFullError(BackendError):
    """The disk (or ``max_size_bytes``) is full: SQLITE_FULL. The batch was rolled back.

    Nothing of the batch reached the file, so a restart finds the state of the last commit and
    replays the log after its consistent index. The store in memory, though, has already applied
    the batch's requests: rebuild it from the backend before serving again (etcd stops).
    """


def integrity_error(problems: list[str]) -> BackendError:
    """etcdctl's error for a snapshot whose database fails its integrity check."""
    return BackendError(
        f"snapshot file integrity check failed. {len(problems)} errors found.\n"
        + "\n".join(problems)
    )


__all__ = ["BackendError", "BackendFullError", "SnapshotHashError", "integrity_error"]
