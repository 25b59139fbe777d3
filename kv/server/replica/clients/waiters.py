"""Clients waiting on the Raft loop: by request id, and by applied index (chapter 4).

A proposal leaves the member as bytes in a log entry and comes back, committed, in a Ready --
possibly on another member's behalf, possibly never (a leader change can drop it). The client
that proposed it waits on a future registered under the request id it put in the entry; the
loop triggers that future when it applies an entry carrying the id (etcd: ``pkg/wait``'s
``Wait``). A linearizable read waits instead for the applied index to reach its ReadIndex
(etcd: ``wait.WaitTime``). When the member stops, every waiter gets the error. A waiter
still waiting at its request's deadline gets the timeout's error (`Deadlines`).

Request ids are unique across members and restarts (etcd: ``idutil.Generator``): the member
id's low 16 bits, the start time in milliseconds (40 bits), then a counter.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def request_ids(member_id: int, now: float) -> Iterator[int]:
    """Request ids for the member ``member_id`` started at ``now`` (seconds since the epoch)."""
    start = (member_id & 0xFFFF) << 48 | (int(now * 1000) & (1 << 40) - 1) << 8
    return itertools.count(start + 1)


class Waiters(Generic[T]):
    """Futures by request id: registered by a proposer, triggered by the apply loop."""

    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[T]] = {}

    def register(self, request_id: int) -> asyncio.Future[T]:
        """A future for ``request_id``'s result (call from the event loop)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return future

    def __len__(self) -> int:
        return len(self._futures)

    def forget(self, request_id: int) -> None:
        """The proposer stopped waiting (dropped, timed out, answered)."""
        self._futures.pop(request_id, None)

    def trigger(self, request_id: int, result: T) -> None:
        """``request_id``'s entry was applied here with ``result``: wake its proposer, if any
        (an entry proposed on another member has none here)."""
        future = self._futures.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    def fail_one(self, request_id: int, error: BaseException) -> None:
        """``request_id``'s proposal was refused: its proposer gets ``error``."""
        future = self._futures.pop(request_id, None)
        if future is not None:
            _fail((future,), error)

    def fail(self, error: BaseException) -> None:
        """The member stopped: every waiter gets ``error``."""
        futures, self._futures = self._futures, {}
        _fail(futures.values(), error)


class IndexWaiters:
    """Futures that wake once the applied index reaches theirs."""

    def __init__(self) -> None:
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def register(self, index: int) -> asyncio.Future[None]:
        """A future that resolves once `reached` is told of an applied index of at least
        ``index``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((index, future))
        return future

    def reached(self, applied: int) -> None:
        """Entries up to ``applied`` are applied: wake whoever waited for no more."""
        still: list[tuple[int, asyncio.Future[None]]] = []
        for index, future in self._waiting:
            if index > applied:
                still.append((index, future))
            elif not future.done():
                future.set_result(None)
        self._waiting = still

    def fail(self, error: BaseException) -> None:
        """The member stopped: every waiter gets ``error``."""
        waiting, self._waiting = self._waiting, []
        _fail((future for _, future in waiting), error)


class Deadlines:
    """Futures that fail when their deadline passes, unless done before: one timer for all.

    Every request a client waits for has a deadline (etcd's request timeout). One timer per
    request (``asyncio.wait_for``, ``asyncio.timeout``) costs a timer, callbacks and, for
    ``wait_for``, an extra hop through the event loop on every answer, for a timeout that
    almost never fires. Here a request's future joins a queue in deadline order, and one timer
    waits for the oldest future still not done; when it fires, the futures past their
    deadline get ``error()``, made at that moment. The queue forgets the answered ones at its
    head as it goes (`forget_done`, each tick).
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[float, asyncio.Future[Any], Callable[[], BaseException]]]
        self._queue = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(
        self, future: asyncio.Future[Any], deadline: float, error: Callable[[], BaseException]
    ) -> None:
        """Fail ``future`` with ``error()`` at ``deadline`` (event loop time) if it is not done
        by then."""
        queue = self._queue
        if queue and deadline < queue[-1][0]:
            # Out of order (a request that waited for a leader before it joined): a timer of
            # its own, so that the queue stays sorted.
            timer = future.get_loop().call_at(deadline, _expire, future, error)
            future.add_done_callback(lambda _: timer.cancel())
            return
        queue.append((deadline, future, error))
        if self._timer is None:
            self._timer = future.get_loop().call_at(deadline, self._fire)

    def __len__(self) -> int:
        """Futures in the queue (done ones not forgotten yet included)."""
        return len(self._queue)

    def forget_done(self) -> None:
        """Drop the futures at the queue's head that are done (answered, failed, cancelled)."""
        queue = self._queue
        while queue and queue[0][1].done():
            queue.popleft()

    def clear(self) -> None:
        """Forget every deadline (the member stopped, and failed every waiter already)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()

    def _fire(self) -> None:
        self._timer = None
        queue = self._queue
        while queue:
            deadline, future, error = queue[0]
            if not future.done():
                now = future.get_loop().time()
                if deadline > now:
                    self._timer = future.get_loop().call_at(deadline, self._fire)
                    return
                future.set_exception(error())
            queue.popleft()


def _expire(future: asyncio.Future[Any], error: Callable[[], BaseException]) -> None:
    if not future.done():
        future.set_exception(error())


def _fail(futures: Iterable[asyncio.Future[Any]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
