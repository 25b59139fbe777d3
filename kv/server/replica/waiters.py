"""Clients waiting on the Raft loop: by request id, and by applied index (chapter 4).

A proposal leaves the member as bytes in a log entry and comes back, committed, in a Ready --
possibly on another member's behalf, possibly never (a leader change can drop it). The client
that proposed it waits on a future registered under the request id it put in the entry; the
loop triggers that future when it applies an entry carrying the id (etcd: ``pkg/wait``'s
``Wait``). A linearizable read waits instead for the applied index to reach its ReadIndex
(etcd: ``wait.WaitTime``). When the member stops, every waiter gets the error.

Request ids are unique across members and restarts (etcd: ``idutil.Generator``): the member
id's low 16 bits, the start time in milliseconds (40 bits), then a counter.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
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

    async def wait(self, index: int) -> None:
        """Return once `reached` is told of an applied index of at least ``index``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((index, future))
        await future

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


def _fail(futures: Iterable[asyncio.Future[Any]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
