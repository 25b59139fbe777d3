"""Group commit: many writers, one fsync (chapter 2).

An fsync costs about as much for one record as for a thousand: the disk waits for the flush,
not for the bytes. So when many requests want their records durable at once, the cheap way is
to write them all and fsync once. `GroupCommitter` does that for the asyncio driver:

* ``await committer.write(entries, state)`` queues the records and returns once they are
  fsynced (or raises if they could not be);
* one flusher task takes everything queued, `WAL.save`\\s it in order, and runs `WAL.sync` in a
  worker thread (``asyncio.to_thread``) so the event loop keeps serving;
* writers that arrive while that fsync runs wait in the queue and go together into the next
  one. Under load a batch grows until one fsync covers it: the fsyncs per write fall without
  any timer or tuning knob.

The flusher never saves while its fsync runs, so `WAL.save` and `WAL.sync` never overlap.

Failure: if saving or fsyncing a batch fails, every writer of that batch, and every writer
queued behind it, gets the error, and none of them is acknowledged. After a failed fsync the
kernel may have dropped the dirty pages, and a later fsync could succeed without them, so the
log cannot be trusted again: like etcd, which stops the member when saving to its WAL fails,
the committer refuses every later write (`WalError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kv.api.raftpb import raft_pb2 as raftpb
from kv.wal.wal import WalError, is_empty_hard_state


class Log(Protocol):
    """What the committer needs of a log: `kv.wal.WAL` is one; tests wrap it to spy."""

    def save(
        self, entries: Sequence[raftpb.Entry], state: raftpb.HardState | None = None
    ) -> None: ...

    def sync(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CommitStats:
    """Counters of a `GroupCommitter`, for benchmarks: acknowledged work only."""

    writes: int  # write() calls that returned
    records: int  # WAL records they wrote: entries, plus one per non-empty hard state
    fsyncs: int  # successful fsyncs

    @property
    def fsyncs_per_write(self) -> float:
        """1.0 without batching; lower the more writes shared an fsync."""
        return self.fsyncs / self.writes if self.writes else 0.0


@dataclass(slots=True)
class _Pending:
    """One writer waiting: its records, and the future its write() awaits."""

    entries: Sequence[raftpb.Entry]
    state: raftpb.HardState | None
    done: asyncio.Future[None]

    def record_count(self) -> int:
        has_state = self.state is not None and not is_empty_hard_state(self.state)
        return len(self.entries) + int(has_state)


class GroupCommitter:
    """Batches concurrent writes to a `WAL` (any `Log`) so that one fsync acknowledges them all.

    Use from one event loop. Example::

        committer = GroupCommitter(wal)
        await asyncio.gather(*(committer.write([entry]) for entry in entries))
        committer.stats.fsyncs_per_write  # well below 1 when writers overlap
    """

    __slots__ = ("_failure", "_flusher", "_fsyncs", "_log", "_queue", "_records", "_writes")

    def __init__(self, log: Log) -> None:
        self._log = log
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._writes = 0
        self._records = 0
        self._fsyncs = 0

    async def write(
        self, entries: Sequence[raftpb.Entry], state: raftpb.HardState | None = None
    ) -> None:
        """Append ``entries`` and ``state`` to the WAL; return once they are fsynced.

        Raises:
            OSError: saving or fsyncing this write's batch failed; it is not acknowledged.
            WalError: an earlier batch failed, so the WAL takes no more writes.
        """
        if self._failure is not None:
            raise WalError("wal: an earlier group commit failed") from self._failure
        pending = _Pending(list(entries), state, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="wal group commit")
        await pending.done

    @property
    def stats(self) -> CommitStats:
        """Writes, records and fsyncs so far."""
        return CommitStats(self._writes, self._records, self._fsyncs)

    async def _flush(self) -> None:
        """Commit batches until the queue is empty; the next write() starts a new flusher."""
        batch: list[_Pending] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._commit(batch)
        except Exception as exc:
            self._fail(batch + self._queue, exc)
        finally:
            self._flusher = None
            # Only if this task itself was cancelled (the loop is closing) is anyone still
            # waiting: cancel them rather than leave them waiting forever.
            for pending in batch + self._queue:
                pending.done.cancel()
            self._queue = []

    # --8<-- [start:commit]
    async def _commit(self, batch: list[_Pending]) -> None:
        """Save a batch in arrival order, fsync once, then acknowledge every writer in it."""
        for pending in batch:
            self._log.save(pending.entries, pending.state)
        await asyncio.to_thread(self._log.sync)
        self._fsyncs += 1
        for pending in batch:
            self._writes += 1
            self._records += pending.record_count()
            if not pending.done.done():  # its writer may have been cancelled meanwhile
                pending.done.set_result(None)

    # --8<-- [end:commit]

    def _fail(self, waiting: list[_Pending], exc: Exception) -> None:
        self._failure = exc
        for pending in waiting:
            if not pending.done.done():
                pending.done.set_exception(exc)
