"""When a replica commits its backend's batch: on etcd's batch interval, or once the batch
holds its limit of writes, and before anything that needs the file itself (chapter 2's write
loop, made cheaper; etcd: ``mvcc/backend/backend.go``).

Chapter 2 teaches the simple rule: the effects of each Ready's applied entries are committed
with the consistent index (`kv.server.applied.applied_state.commit_applied`). A SQLite COMMIT
held the event loop about 600 µs, though, once per Ready on every member. etcd's backend does
not commit per Ready: its batch transaction stays open, and is committed every
``--backend-batch-interval`` (100 ms by default) or as soon as it holds
``--backend-batch-limit`` writes (10,000). The replica does the same:

* `commit_if_due`, after each Ready's entries are applied: commit if the batch is full, or
  the interval has passed since the last commit, or it holds a compaction (etcd commits its
  batch when a compaction begins, too: ``store.updateCompactRev``, so that Status shows the
  pages it freed);
* `commit_on_interval`, a timer task: commit a batch left open when the writes stop, so an
  idle member's file catches up within the interval;
* `commit`, before anything that needs the *file* to hold what was applied (etcd's
  ``ForceCommit``): a snapshot that releases the log (`kv.server.replica.snapshots`), a copy
  of the backend for a follower or for ``etcdctl snapshot save``, ``etcdctl defrag``, a swap
  of the backend for a leader's, and the member's stop.

Reads need no commit: the store reads through the batch's own connection, so it sees the
writes the batch holds, as etcd's reads see its pending batch. ``Maintenance.Hash`` reads that
connection too (the batch included, the consistent index left out: the hash a commit would
leave). The size that Status and the quota report is the last commit's, as in etcd.

Why it is safe: an entry is applied only once it is in the fsynced write-ahead log, and the
consistent index is committed in the same SQLite transaction as the writes it covers. A crash
with a batch open loses the batch, but the file then holds some earlier commit, exactly, with
its index, and restart replays the log after that index (chapter 2's recovery, unchanged): no
acknowledged write is lost, it is applied again. What must not happen is the log being
released past what the file holds, so a snapshot commits first (and `kv.backend.Backend.sync`
refuses to run with a batch open). A member that failed to write its backend stops taking
writes and never commits again: a commit on top of a rolled-back batch would record an index
that covers writes the file lacks.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kv.server import errors
from kv.server.applied.applied_state import commit_applied

if TYPE_CHECKING:  # the replica calls into this module: no import cycle at run time
    from kv.server.replica.replica import Replica

#: etcd's defaults (``mvcc/backend``: ``defaultBatchInterval``, ``defaultBatchLimit``), which
#: its flags' 0 stands for.
DEFAULT_INTERVAL_SECONDS = 0.1
DEFAULT_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How long, and how many writes, a batch may stay open. Pure: the time is an argument."""

    interval: float = DEFAULT_INTERVAL_SECONDS  # seconds
    limit: int = DEFAULT_LIMIT  # writes

    @classmethod
    def from_flags(cls, interval: float, limit: int) -> BatchPolicy:
        """``--backend-batch-interval`` and ``--backend-batch-limit``; 0 means etcd's default."""
        return cls(interval or DEFAULT_INTERVAL_SECONDS, limit or DEFAULT_LIMIT)

    def wait(self, now: float, last_commit: float) -> float:
        """Seconds from ``now`` until a batch opened since ``last_commit`` is due."""
        return max(0.0, last_commit + self.interval - now)

    def due(self, now: float, last_commit: float, pending_writes: int) -> bool:
        """Is a batch with ``pending_writes`` writes, last committed at ``last_commit``, due?"""
        return pending_writes >= self.limit or now - last_commit >= self.interval


@dataclass(slots=True)
class Batch:
    """A replica's batch: its policy, when it was last committed, and the compaction the
    file held then."""

    policy: BatchPolicy
    last_commit: float  # time.monotonic()
    compact_revision: int


def has_uncommitted(replica: Replica) -> bool:
    """Does the file lag what was applied? (Writes in the batch, or entries that wrote
    nothing, a new leader's empty one say, past the committed consistent index.)"""
    backend = replica.backend
    return backend.in_batch or backend.consistent_index < replica.machine.applied_index


def commit(replica: Replica) -> None:
    """Commit the batch now, with the consistent index, if the file lags (etcd: ForceCommit).

    Raises:
        EtcdError: "server stopped", if the member stopped taking writes: a failed batch was
            rolled back, and committing now would cover writes the file lacks.
        BackendError: the commit failed (the caller stops writes).
    """
    if replica.failure is not None:
        raise errors.STOPPED
    if has_uncommitted(replica):
        with replica.backend_commit_seconds.time():
            commit_applied(replica.backend, replica.machine)
    batch = replica.batch
    batch.last_commit = time.monotonic()
    batch.compact_revision = replica.machine.store.compact_revision


def commit_if_due(replica: Replica) -> None:
    """After a Ready's entries are applied: commit if the batch is full, the interval is up,
    or it holds a compaction."""
    batch = replica.batch
    if replica.machine.store.compact_revision != batch.compact_revision or batch.policy.due(
        time.monotonic(), batch.last_commit, replica.backend.pending_writes
    ):
        commit(replica)


async def commit_on_interval(replica: Replica) -> None:
    """The batch timer: commit what was applied since the last commit, once the interval is
    up, so that the file catches up when the writes stop. Ends when the member stops taking
    writes (`Replica.commit_backend` has said why)."""
    batch = replica.batch
    while replica.failure is None:
        await asyncio.sleep(batch.policy.wait(time.monotonic(), batch.last_commit))
        if batch.policy.wait(time.monotonic(), batch.last_commit) > 0:
            continue  # a Ready committed meanwhile
        try:
            replica.commit_backend()
        except Exception:
            return  # logged by the replica, which stopped taking writes


__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_LIMIT",
    "Batch",
    "BatchPolicy",
    "commit",
    "commit_if_due",
    "commit_on_interval",
    "has_uncommitted",
]
