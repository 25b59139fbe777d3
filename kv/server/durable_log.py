"""The durable write path of a single member: log first, then apply (chapter 2).

A write request takes four steps, and the order is the whole point:

1. **Propose.** The request is wrapped in an ``InternalRaftRequest``, given the next log
   *index*, and appended to the write-ahead log.
2. **Persist.** The log is fsynced. Requests that arrive while an fsync is running wait for
   the next one together (group commit), so one fsync covers many writes.
3. **Apply.** Entries are applied to the store strictly in index order, and the backend
   commits their effects together with the index of the last one (the *consistent index*).
4. **Answer.** Only now does the client hear back: what it was told is on disk, and a crash
   at any moment loses nothing it was told.

Every ``--snapshot-count`` entries the backend is made durable and a snapshot file records
the index it holds, so the write-ahead log before that index can be released.

If the log cannot be written or the backend cannot commit (a full disk, an I/O error), the
member stops taking writes, as etcd stops (it panics): what is on disk is consistent, and a
restart replays the log from the backend's consistent index. Carrying on would let the backend
and the consistent index disagree. Reads go on being served.

Chapter 3 replaces step 2 for a cluster: an entry is *committed* once a majority of members
have it on disk. The rest stays as it is.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.raftpb import raft_pb2
from kv.api.walpb import record_pb2
from kv.backend import Backend
from kv.server import errors
from kv.server.state_machine import Result, StateMachine
from kv.snap import Snapshotter
from kv.wal import WAL, GroupCommitter

# Without Raft (chapter 3) a single member is its own leader in one unchanging term.
SINGLE_MEMBER_TERM = 1

log = logging.getLogger(__name__)

# etcd's text for a member that no longer serves (its clients map it back by the text).
SERVER_STOPPED = errors.STOPPED


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """When to snapshot and how much to keep: etcd's --snapshot-count, --max-wals and
    --max-snapshots (0 keeps every file)."""

    snapshot_count: int = 100_000
    max_wals: int = 5
    max_snapshots: int = 5


class DurableLog:
    """Proposes requests to the write-ahead log and applies them once they are durable."""

    def __init__(
        self,
        *,
        wal: WAL,
        backend: Backend,
        snapshotter: Snapshotter,
        machine: StateMachine,
        last_index: int,
        snapshot_index: int,
        policy: SnapshotPolicy,
    ) -> None:
        self.wal = wal
        self.backend = backend
        self.snapshotter = snapshotter
        self.machine = machine
        self.committer = GroupCommitter(wal)
        self.last_index = last_index  # the last index proposed
        self.snapshot_index = snapshot_index
        self.policy = policy
        self._unapplied: deque[tuple[int, InternalRaftRequest]] = deque()
        self._results: dict[int, Result] = {}
        self.failure: BaseException | None = None  # why the member stopped taking writes

    # --8<-- [start:propose]
    async def propose(self, request: InternalRaftRequest) -> Result:
        """Log ``request``, wait until it is on disk, apply it in order; return its result."""
        if self.failure is not None:
            raise SERVER_STOPPED
        self.last_index += 1
        index = self.last_index
        entry = raft_pb2.Entry(
            Term=SINGLE_MEMBER_TERM,
            Index=index,
            Type=raft_pb2.EntryNormal,
            Data=request.SerializeToString(),
        )
        self._unapplied.append((index, request))
        try:
            await self.committer.write([entry], None)  # returns once fsynced
            # The log is one file written in order: entry `index` on disk means every entry
            # before it is too. Apply them all (another waiter may not have woken up yet).
            self._apply_through(index)
        except Exception as error:
            self._stop_writes(error)
            raise SERVER_STOPPED from error
        return self._results.pop(index)

    def _apply_through(self, index: int) -> None:
        if self.failure is not None:  # never commit on top of a batch that was rolled back
            raise self.failure
        applied_any = False
        while self._unapplied and self._unapplied[0][0] <= index:
            entry_index, request = self._unapplied.popleft()
            result = self.machine.apply(entry_index, request)
            assert result is not None, "a new entry cannot have been applied already"
            self._results[entry_index] = result
            applied_any = True
        if applied_any:
            commit_applied(self.backend, self.machine)
            self._maybe_snapshot()

    # --8<-- [end:propose]

    def _stop_writes(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
            log.error("stopped taking writes: %s (restart the member to recover)", error)

    def _maybe_snapshot(self) -> None:
        applied = self.machine.applied_index
        if applied - self.snapshot_index >= self.policy.snapshot_count:
            self.snapshot()

    # --8<-- [start:snapshot]
    def snapshot(self) -> None:
        """Make the backend durable, record its index, and release the log before it."""
        index = self.machine.applied_index
        self.backend.sync()  # the data first: the log may only be released once it is safe
        # The log's marker before the .snap file: recovery opens the log at the newest .snap
        # file, so that file's marker must already be in the log. A crash between the two
        # leaves an older .snap file, whose marker and later entries are still there.
        self.wal.save_snapshot(record_pb2.Snapshot(index=index, term=SINGLE_MEMBER_TERM))
        metadata = raft_pb2.SnapshotMetadata(index=index, term=SINGLE_MEMBER_TERM)
        self.snapshotter.save(raft_pb2.Snapshot(metadata=metadata))
        self.wal.release_to(index)
        released = self.wal.purge(self.policy.max_wals) if self.policy.max_wals else []
        if self.policy.max_snapshots:  # etcd: 0 keeps every file
            self.snapshotter.purge(self.policy.max_snapshots)
        self.snapshot_index = index
        log.info("saved snapshot at index %d; released %d WAL segment(s)", index, len(released))

    # --8<-- [end:snapshot]

    def close(self) -> None:
        self.wal.close()
        self.backend.close()


def commit_applied(backend: Backend, machine: StateMachine) -> None:
    """Commit the applied entries' effects, the compaction revision and the consistent index.

    Compaction happens inside one backend batch here, so it is recorded as scheduled and
    finished at once: a crash cannot leave it half done (compare etcd issue #17780).
    """
    compacted = machine.store.compact_revision
    if compacted > backend.compact_revision:
        backend.schedule_compaction(compacted)
        backend.finish_compaction(compacted)
    backend.commit(machine.applied_index)
