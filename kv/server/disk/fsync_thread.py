"""The WAL's fsync thread: one long-lived thread that makes the log durable while the event
loop serves on (chapter 2's group commit, as `kv serve` drives it).

An fsync blocks for as long as the disk takes, so the Raft loop must not run it on the event
loop's thread: the requests that arrive during one fsync are what the next Ready carries, and
that is what lets many writes share one fsync (group commit). Run inline, the fsync stops the
loop, nothing arrives meanwhile, and every Ready carries about one write.

``asyncio.to_thread`` would run it elsewhere too, but each call goes through the default
executor: a work item, a `concurrent.futures.Future` chained to an asyncio one, the pool's
bookkeeping, in Python, on both threads. Measured on the benchmark machine, that doubled what
an fsync costs in CPU (about 110 µs above the fsync's own, against about 50 µs here). This
thread does nothing else: the loop puts a request on a queue, the thread syncs and hands the
answer back with ``call_soon_threadsafe``, one wake-up each way. etcd's WAL sync runs in its
Raft goroutine, which Go parks and wakes for free; a Python server pays per thread hop, so it
pays for as few as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable

#: A request to the thread: the loop to answer on, and the future it waits on.
_Request = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class FsyncThread:
    """Runs ``sync`` on a thread of its own, one call at a time, for coroutines to await."""

    def __init__(self, sync: Callable[[], None], *, name: str = "wal fsync") -> None:
        """``sync`` is what each `run` does (the WAL's fsync); the thread starts on first use."""
        self._sync = sync
        self._name = name
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self) -> None:
        """Call ``sync`` on the thread and return when it has; raise what it raised.

        Cancelling the wait does not cancel the call: an fsync cannot be taken back.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._requests.put((loop, done))
        await done

    def close(self) -> None:
        """Let the thread finish the calls asked before, then end it."""
        if self._thread is not None:
            self._requests.put(None)
            self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        """The thread: call ``sync`` for each request, until `close`."""
        while (request := self._requests.get()) is not None:
            loop, done = request
            error: BaseException | None = None
            try:
                self._sync()
            except BaseException as raised:  # handed to the waiting coroutine, not lost here
                error = raised
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, done, error)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    """On the loop: wake the coroutine waiting on ``done`` (unless it gave up)."""
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
