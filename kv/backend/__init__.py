"""kv.backend: the applied MVCC state on disk, in SQLite, as etcd keeps it in bbolt (chapter 2).

What the state machine has applied lives in ``<data-dir>/member/snap/db``, with the index of
the last log entry it covers (the *consistent index*); a restart rebuilds the store from it
and replays the write-ahead log (`kv.wal`) after that index.

Modules, in reading order:

* `schema` -- the tables, etcd's buckets (``kv``, ``meta``, ``alarm``, ``member``, ``lease``
  ...), and the names of the meta rows (`CONSISTENT_INDEX`, `COMPACT_REVISION`).
* `errors` -- `BackendError`, `BackendFullError` (the disk is full), `SnapshotHashError`.
* `history` -- `History`: table ``kv`` as the store's ``Revision -> HistoryEntry`` mapping.
* `backend` -- `Backend`: the file, its batch committed with the consistent index, compaction
  that survives a crash, the small buckets (alarms, members, leases), defragment, sync,
  snapshot and restore. Its docstring is the theory of operation.
* `snapshot_copy` -- copying the file: the consistent copy a snapshot saves, and
  `checked_snapshot_copy`, which cuts a snapshot's SHA-256 off and checks it for a restore.
* `summary` -- `summarize_file` (``etcdctl snapshot status``'s `FileSummary`) and the hash
  over every table.
"""

from kv.backend.backend import Backend
from kv.backend.errors import BackendError, BackendFullError, SnapshotHashError, integrity_error
from kv.backend.history import History
from kv.backend.schema import COMPACT_REVISION, CONSISTENT_INDEX, SCHEDULED_COMPACT_REVISION
from kv.backend.snapshot_copy import SHA256_SIZE, checked_snapshot_copy
from kv.backend.summary import FileSummary, summarize_file

__all__ = [
    "COMPACT_REVISION",
    "CONSISTENT_INDEX",
    "SCHEDULED_COMPACT_REVISION",
    "SHA256_SIZE",
    "Backend",
    "BackendError",
    "BackendFullError",
    "FileSummary",
    "History",
    "SnapshotHashError",
    "checked_snapshot_copy",
    "integrity_error",
    "summarize_file",
]
