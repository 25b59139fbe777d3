"""Making files durable: the file-system rules every on-disk structure of kv follows (chapter 2).

``write()`` only hands bytes to the operating system; they reach the disk at ``fsync()``.
A new or renamed file also needs an fsync of its *directory*, or a crash can forget the name
even though the contents were saved. Writing a new file under a temporary name, fsyncing it
and renaming it over the final name makes the replacement atomic: after a crash the file is
either the old one or the new one, never half of each.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Fsync a file or a directory (a directory's fsync makes new names in it durable)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_dir(directory: Path) -> None:
    """Make the names in ``directory`` (new files, renames, deletions) durable."""
    fsync_path(directory)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)
