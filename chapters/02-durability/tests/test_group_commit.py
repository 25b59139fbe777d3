"""Group commit: concurrent writers share fsyncs, and nothing is acknowledged before its fsync.

Deterministic without timing: asyncio runs ready tasks in the order they were scheduled, so
writers started together all queue before the flusher takes its first batch, and a test that
needs an fsync to be "in progress" holds it there with a threading.Event.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Awaitable, Iterator, Sequence
from pathlib import Path

import pytest

from kv.api.raftpb import raft_pb2 as raftpb
from kv.wal import WAL, GroupCommitter, WalContents, WalError

WRITERS = 50


def entry(index: int) -> raftpb.Entry:
    return raftpb.Entry(Term=1, Index=index, Data=b"put key-%d" % index)


class SpyLog:
    """Wraps a WAL for the committer: counts syncs, can hold the first one, can make them fail.

    ``hold``: the first sync() sets ``entered`` and waits for ``release`` (set by the test)
    before it really syncs. ``fail``: every sync() raises EIO (after the hold, if any).
    """

    def __init__(self, wal: WAL, *, hold: bool = False, fail: bool = False) -> None:
        self.wal = wal
        self.hold, self.fail = hold, fail
        self.entered, self.release = threading.Event(), threading.Event()
        self.syncs = 0

    def save(self, entries: Sequence[raftpb.Entry], state: raftpb.HardState | None = None) -> None:
        self.wal.save(entries, state)

    def sync(self) -> None:
        self.syncs += 1
        if self.hold and self.syncs == 1:
            self.entered.set()
            self.release.wait()
        if self.fail:
            raise OSError(errno.EIO, "injected fsync failure")
        self.wal.sync()


@pytest.fixture
def wal(tmp_path: Path) -> Iterator[WAL]:
    with WAL.create(tmp_path, b"metadata") as wal:
        yield wal


def reopened(wal: WAL) -> WalContents:
    reader, contents = WAL.open(wal.directory)
    reader.close()
    return contents


def writes(committer: GroupCommitter, first: int, last: int) -> list[Awaitable[None]]:
    return [committer.write([entry(index)]) for index in range(first, last + 1)]


async def test_concurrent_writers_share_far_fewer_fsyncs_than_writes(wal: WAL) -> None:
    spy = SpyLog(wal)
    committer = GroupCommitter(spy)
    await asyncio.gather(*writes(committer, 1, WRITERS))
    assert committer.stats.writes == WRITERS
    assert spy.syncs == committer.stats.fsyncs <= 2
    assert committer.stats.fsyncs_per_write <= 2 / WRITERS


async def test_writers_arriving_during_an_fsync_share_the_next_one(wal: WAL) -> None:
    spy = SpyLog(wal, hold=True)
    committer = GroupCommitter(spy)
    first = asyncio.ensure_future(committer.write([entry(1)]))
    await asyncio.to_thread(spy.entered.wait)  # the first fsync is running, and held
    later = [asyncio.ensure_future(write) for write in writes(committer, 2, WRITERS)]
    await asyncio.sleep(0)  # one pass of the loop: every later writer queues (no timing)
    spy.release.set()
    await asyncio.gather(first, *later)
    assert spy.syncs == 2


async def test_a_write_is_not_acknowledged_before_its_fsync_completes(wal: WAL) -> None:
    spy = SpyLog(wal, hold=True)
    committer = GroupCommitter(spy)
    write = asyncio.ensure_future(committer.write([entry(1)]))
    await asyncio.to_thread(spy.entered.wait)
    assert not write.done()
    spy.release.set()
    await write
    assert committer.stats.fsyncs == 1


async def test_every_acknowledged_write_is_in_the_log_when_reopened(wal: WAL) -> None:
    committer = GroupCommitter(wal)
    await asyncio.gather(*writes(committer, 1, WRITERS))
    assert [e.Index for e in reopened(wal).entries] == list(range(1, WRITERS + 1))


async def test_writes_are_saved_in_the_order_they_were_made(wal: WAL) -> None:
    committer = GroupCommitter(wal)
    state = raftpb.HardState(term=1, vote=1, commit=3)
    await asyncio.gather(committer.write([entry(1), entry(2)]), committer.write([entry(3)], state))
    contents = reopened(wal)
    assert [e.Index for e in contents.entries] == [1, 2, 3]
    assert contents.state == state


async def test_stats_count_records_of_entries_and_hard_states(wal: WAL) -> None:
    committer = GroupCommitter(wal)
    await committer.write([entry(1), entry(2)], raftpb.HardState(term=1))
    await committer.write([entry(3)])
    assert (committer.stats.writes, committer.stats.records) == (2, 4)


async def test_a_write_after_the_queue_drained_gets_its_own_fsync(wal: WAL) -> None:
    committer = GroupCommitter(wal)
    await committer.write([entry(1)])
    await committer.write([entry(2)])
    assert committer.stats.fsyncs == 2


async def test_an_fsync_error_reaches_every_waiter_of_the_batch(wal: WAL) -> None:
    committer = GroupCommitter(SpyLog(wal, fail=True))
    results = await asyncio.gather(*writes(committer, 1, WRITERS), return_exceptions=True)
    assert all(isinstance(result, OSError) for result in results)
    assert {result.errno for result in results if isinstance(result, OSError)} == {errno.EIO}


async def test_an_fsync_error_leaves_nothing_acknowledged(wal: WAL) -> None:
    committer = GroupCommitter(SpyLog(wal, fail=True))
    await asyncio.gather(*writes(committer, 1, WRITERS), return_exceptions=True)
    stats = committer.stats
    assert (stats.writes, stats.records, stats.fsyncs) == (0, 0, 0)


async def test_writers_queued_behind_a_failed_fsync_fail_too(wal: WAL) -> None:
    spy = SpyLog(wal, hold=True, fail=True)
    committer = GroupCommitter(spy)
    first = asyncio.ensure_future(committer.write([entry(1)]))
    await asyncio.to_thread(spy.entered.wait)
    queued = asyncio.ensure_future(committer.write([entry(2)]))
    await asyncio.sleep(0)  # the second writer queues behind the held fsync
    spy.release.set()
    results = await asyncio.gather(first, queued, return_exceptions=True)
    assert all(isinstance(result, OSError) for result in results)
    assert spy.syncs == 1  # the queued writer never got an fsync of its own


async def test_a_committer_refuses_writes_after_an_fsync_error(wal: WAL) -> None:
    committer = GroupCommitter(SpyLog(wal, fail=True))
    with pytest.raises(OSError):
        await committer.write([entry(1)])
    with pytest.raises(WalError, match="earlier"):
        await committer.write([entry(2)])
