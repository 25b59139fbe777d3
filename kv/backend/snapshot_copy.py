"""Copies of a backend file: a snapshot's, and the checked one a restore starts from (chapter 2).

`copy_database` is how `Backend.snapshot_to` copies the committed state (etcdctl's ``snapshot
save``); `checked_snapshot_copy` is how a restore cuts a snapshot's SHA-256 off and checks it
(``snapshot restore``), and `check_is_backend` refuses a file that holds no kv backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from pathlib import Path

from kv.backend.errors import BackendError, SnapshotHashError
from kv.backend.schema import require_kv_tables
from kv.fsutil import fsync_path

# etcdctl's `snapshot save` appends the SHA-256 of the data to a snapshot; a database file is
# whole pages (multiples of 512 bytes), so 32 bytes past a 512-byte boundary mean "hash here".
SHA256_SIZE = 32
HASH_ALIGNMENT = 512


def copy_database(source: Path, target: Path) -> None:
    """Copy the committed state of the database ``source`` into a new file ``target``, fsynced.

    SQLite's online backup reads one consistent snapshot of ``source``, however busy it is.
    The copy is switched to a rollback journal: one self-contained file, no -wal beside it.
    """
    uri = f"{source.absolute().as_uri()}?mode=ro"
    with (
        contextlib.closing(sqlite3.connect(uri, uri=True)) as reader,
        contextlib.closing(sqlite3.connect(target)) as writer,
    ):
        reader.backup(writer)
        writer.execute("PRAGMA journal_mode=DELETE")
    fsync_path(target)


def checked_snapshot_copy(snapshot: Path, path: Path, *, skip_hash_check: bool = False) -> Path:
    """Copy a snapshot's data, without its SHA-256, to a new file beside ``path``; return it.

    ``path`` is where a restore will put the backend: it must not exist yet, and its
    directory is made. As etcd's restore does (``clientv3/snapshot/v3_snapshot.go``,
    ``saveDB``), the hash is cut off and checked; a file without one (a copy of some
    ``member/snap/db``) is only accepted with ``skip_hash_check``, which also skips the check
    of a hash that is there. The copy is fsynced; the caller removes it when done.

    Raises:
        FileNotFoundError: ``snapshot`` does not exist.
        SnapshotHashError: the hash is missing or does not match (etcd's messages).
        BackendError: ``path`` exists.
    """
    if path.exists():
        raise BackendError(f"{path} already exists")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.unlink(missing_ok=True)
    try:
        expected, actual = _copy_without_hash(snapshot, partial, snapshot.stat().st_size)
        if expected is None and not skip_hash_check:
            raise SnapshotHashError("snapshot missing hash but --skip-hash-check=false")
        if expected is not None and not skip_hash_check and expected != actual:
            raise SnapshotHashError(
                f"expected sha256 {_go_bytes(expected)}, got {_go_bytes(actual)}"
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _copy_without_hash(snapshot: Path, target: Path, size: int) -> tuple[bytes | None, bytes]:
    """Copy ``snapshot`` to ``target`` (fsynced) without a trailing SHA-256, if it has one.

    Returns the SHA-256 found at its end (None if the size says there is none) and the SHA-256
    of what was copied. A database is whole pages (multiples of 512 bytes), so 32 bytes past a
    512-byte boundary mean "hash here" (etcd: ``hasChecksum``).
    """
    has_hash = size % HASH_ALIGNMENT == SHA256_SIZE
    remaining = size - SHA256_SIZE if has_hash else size
    digest = hashlib.sha256()
    with snapshot.open("rb") as source, target.open("xb") as copy:
        while remaining:
            chunk = source.read(min(remaining, 1 << 20))
            if not chunk:
                raise BackendError(f"{snapshot}: shorter than its size")
            digest.update(chunk)
            copy.write(chunk)
            remaining -= len(chunk)
        expected = source.read(SHA256_SIZE) if has_hash else None
        copy.flush()
        os.fsync(copy.fileno())
    return expected, digest.digest()


def _go_bytes(data: bytes) -> str:
    """A byte slice as Go's ``%v`` prints it: ``[10 229 46]`` (etcd's hash mismatch message)."""
    return "[" + " ".join(str(byte) for byte in data) + "]"


def check_is_backend(path: Path, name: Path) -> None:
    """Refuse a file that is not a kv backend (a bbolt file from etcd, say), naming ``name``."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as copy:
            require_kv_tables(copy, name)
    except sqlite3.DatabaseError as error:
        raise BackendError(f"{name}: not a kv snapshot: {error}") from error


__all__ = [
    "HASH_ALIGNMENT",
    "SHA256_SIZE",
    "check_is_backend",
    "checked_snapshot_copy",
    "copy_database",
]
