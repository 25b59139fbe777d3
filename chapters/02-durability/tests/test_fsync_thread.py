"""The WAL's fsync thread (`kv.server.disk.fsync_thread`): the Raft loop awaits each fsync
while it runs on a thread of its own, one at a time, and gets its error back.

Deterministic without timing: a call that must still be running is held there by a
threading.Event, and released by the test.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from kv.server.disk.fsync_thread import FsyncThread

#: How long a test waits for something that must happen (a failure if it does not).
PATIENCE = 10.0


class HeldSync:
    """A sync that records the thread it ran on, and waits for ``release`` while ``hold``."""

    def __init__(self, *, hold: bool = False) -> None:
        self.threads: list[str] = []
        self.entered, self.release = threading.Event(), threading.Event()
        if not hold:
            self.release.set()

    def __call__(self) -> None:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(PATIENCE), "the test never released the sync"


async def test_a_run_returns_once_the_sync_ran_on_the_fsync_thread() -> None:
    sync = HeldSync()
    fsyncs = FsyncThread(sync, name="wal fsync test")
    try:
        await asyncio.wait_for(fsyncs.run(), PATIENCE)
    finally:
        fsyncs.close()
    assert sync.threads == ["wal fsync test"]


async def test_the_event_loop_serves_on_while_a_sync_runs() -> None:
    sync = HeldSync(hold=True)
    fsyncs = FsyncThread(sync)
    try:
        running = asyncio.ensure_future(fsyncs.run())
        assert await asyncio.to_thread(sync.entered.wait, PATIENCE)
        assert not running.done()  # the loop ran this test meanwhile
        sync.release.set()
        await asyncio.wait_for(running, PATIENCE)
    finally:
        sync.release.set()
        fsyncs.close()


async def test_calls_run_one_at_a_time_in_the_order_asked() -> None:
    sync = HeldSync(hold=True)
    fsyncs = FsyncThread(sync)
    try:
        first = asyncio.ensure_future(fsyncs.run())
        assert await asyncio.to_thread(sync.entered.wait, PATIENCE)
        second = asyncio.ensure_future(fsyncs.run())
        await asyncio.sleep(0)  # let the second call be asked
        assert len(sync.threads) == 1 and not second.done()
        sync.release.set()
        await asyncio.wait_for(asyncio.gather(first, second), PATIENCE)
    finally:
        sync.release.set()
        fsyncs.close()
    assert len(sync.threads) == 2


async def test_a_failed_sync_raises_its_error_in_the_caller() -> None:
    def failing() -> None:
        raise OSError(5, "Input/output error")

    fsyncs = FsyncThread(failing)
    try:
        with pytest.raises(OSError, match="Input/output error"):
            await asyncio.wait_for(fsyncs.run(), PATIENCE)
    finally:
        fsyncs.close()


async def test_a_caller_that_gives_up_leaves_the_thread_serving_the_next() -> None:
    sync = HeldSync(hold=True)
    fsyncs = FsyncThread(sync)
    try:
        abandoned = asyncio.ensure_future(fsyncs.run())
        assert await asyncio.to_thread(sync.entered.wait, PATIENCE)
        abandoned.cancel()
        sync.release.set()
        await asyncio.wait_for(fsyncs.run(), PATIENCE)
    finally:
        sync.release.set()
        fsyncs.close()
    assert len(sync.threads) == 2


def test_close_ends_the_thread_and_a_closed_one_starts_again_when_used() -> None:
    sync = HeldSync()
    fsyncs = FsyncThread(sync, name="wal fsync closing")
    asyncio.run(fsyncs.run())
    fsyncs.close()
    assert "wal fsync closing" not in {thread.name for thread in threading.enumerate()}
    asyncio.run(fsyncs.run())
    fsyncs.close()
    assert len(sync.threads) == 2
