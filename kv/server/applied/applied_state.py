"""A member's applied state as a whole: opened, copied for a follower, replaced by the
leader's copy (chapters 2 and 5).

Everything a member has applied lives in its backend (``member/snap/db``): the key space, the
alarms, the members, the leases (chapter 7), and the consistent index that says how far in
the log it goes. So a snapshot of the state machine is a copy of that one file, and
installing a leader's snapshot is putting its file in place of ours.
`kv.server.replica.replica` does both through these functions, and commits what it applied
with `commit_applied` (on etcd's batch interval, not after every Ready:
`kv.server.replica.batching`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kv.backend import Backend
from kv.lease import Lessor
from kv.mvcc import Store
from kv.server.applied.alarms import AlarmStore
from kv.server.applied.cached_history import CachedHistory
from kv.server.applied.leases import AppliedLeases, open_lessor
from kv.server.applied.members import MemberStore
from kv.server.applied.state_machine import DEFAULT_MIN_TTL, StateMachine
from kv.server.disk.data_dir import SNAPSHOT_COPY_PREFIX, SNAPSHOT_COPY_SUFFIX


def open_state_machine(
    backend: Backend, at_least: int = 0, *, lessor: Lessor | None = None
) -> StateMachine:
    """The state machine over ``backend``: its store, alarms, members and leases, applied up
    to the backend's consistent index (or ``at_least``, a snapshot's index, if that is higher).
    ``lessor``: an empty lessor with the member's TTL bounds (chapter 7), filled from the
    backend; the leader's deadlines are read on the monotonic clock. Lease checkpoints are
    written to the backend only if the lessor's `kv.lease.Checkpointing` says to persist
    them, but read back from it always, as etcd's ``initAndRecover`` does."""
    with _collector_paused():
        # Reads of recent pairs are served from memory, not SQLite (`cached_history`).
        history = CachedHistory(backend.history)
        store = Store(history, compact_revision=backend.compact_revision)
    # `is None`, not `or`: an empty Lessor is falsy (it has a length), and the member's own one,
    # with the minimum TTL of its --election-timeout, must not give way to the default's.
    lessor = open_lessor(
        lessor if lessor is not None else Lessor(DEFAULT_MIN_TTL), backend, store, backend
    )
    persist = lessor.checkpointing is not None and lessor.checkpointing.persist
    return StateMachine(
        store,
        applied_index=max(backend.consistent_index, at_least),
        alarms=AlarmStore(backend),
        members=MemberStore(backend),
        leases=AppliedLeases(lessor, backend, time.monotonic, backend if persist else None),
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep Python's cycle collector out of the store's rebuild from the backend.

    The rebuild makes objects that all live on: a `KeyIndex`, its generation and their lists
    for every key with more history than the put that created it (`TreeIndex.rebuilt` holds
    the others as ints; before it did, a million keys made some five million objects).
    Collected as they are made, they would be scanned again and again for nothing: half the
    rebuild's CPU, when it made them for every key (issue 12). Paused, they would all be young
    when it resumes, and be scanned once per generation. So they go straight to the oldest
    generation (`gc.freeze` then `gc.unfreeze`), where the next full collection, whenever it
    comes, scans them once, as it would have anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


# --8<-- [start:commit_applied]
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


# --8<-- [end:commit_applied]


async def copy_backend(backend: Backend) -> bytes:
    """A consistent copy of the backend's last commit, made in a worker thread through a
    connection of its own (the apply loop goes on meanwhile), in a file beside it that is
    removed at once (a crash leaves it to be cleaned up on start, like a Snapshot RPC's)."""
    descriptor, name = tempfile.mkstemp(
        prefix=SNAPSHOT_COPY_PREFIX, suffix=SNAPSHOT_COPY_SUFFIX, dir=backend.path.parent
    )
    os.close(descriptor)
    copy = Path(name)
    try:
        await asyncio.to_thread(backend.snapshot_to, copy)
        return await asyncio.to_thread(copy.read_bytes)
    finally:
        copy.unlink(missing_ok=True)
        copy.with_name(copy.name + ".part").unlink(missing_ok=True)


def swap_backend(backend: Backend, received: os.PathLike[str] | str) -> Backend:
    """Close ``backend`` and put the file ``received`` in its place (a leader's snapshot)."""
    path = backend.path
    backend.close()
    for suffix in ("-wal", "-shm"):  # SQLite's side files belong to the old database
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(received, path)
    return Backend.open(path)
