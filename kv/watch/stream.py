"""One client's watch stream: its watch ids, its watchers and its bounded outbox (chapter 8).

A client opens one Watch stream and creates many watches on it. The stream numbers them,
queues what must be sent, and keeps the order etcd keeps (``etcdserver/api/v3rpc/watch.go``
and ``mvcc/watcher_stream.go``):

* **Ids.** A create with ``watch_id`` 0 gets the stream's next id: counting up from 0,
  skipping ids in use, never going back to a freed lower one. A client may choose a non-zero
  id itself; one in use is refused with etcd's ``mvcc: duplicate watch ID provided on the
  WatchStream`` (as a created-and-canceled reply with ``watch_id`` -1).
* **One queue, in order.** The created reply goes out before any event of its watch, and
  replies go out in the order they were queued; so created replies come in request order, and
  a progress reply never overtakes an event queued before it.
* **Bounded.** At most ``capacity`` replies carrying events wait in the outbox (etcd: a
  128-slot channel per stream). A watcher whose reply would not fit is not waited for: the hub
  moves it back to the unsynced watchers, and it catches up from history once there is room.
  Writers never wait for a reader, and no event is lost.

The stream holds no socket: the driver `take`s the replies and sends them, and ``wake`` (if
given) tells it there is something to take.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kv.watch.events import NO_WATCH_ID, WatchRequest, WatchResponse

if TYPE_CHECKING:
    from kv.watch.hub import WatchHub

#: The replies with events one stream may hold (etcd: ``chanBufLen``).
STREAM_CAPACITY = 128
DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"
EMPTY_RANGE = "mvcc: watcher range is empty"


class WatcherState(enum.Enum):
    """Where a watcher is. SYNCED: it has seen every revision up to the store's, and new
    writes are handed to it as they happen. UNSYNCED: it is behind (a start in the past, or a
    full outbox) and reads the history it missed. COMPACTED: its history is gone; it is told so
    once, and its id stays taken until the client cancels it."""

    SYNCED = "synced"
    UNSYNCED = "unsynced"
    COMPACTED = "compacted"


@dataclass(eq=False, slots=True)
class Watcher:
    """One watch: what it asked for and how far it got (``next_revision``: the first revision
    it has not been sent)."""

    id: int
    request: WatchRequest
    stream: WatchStream
    next_revision: int
    state: WatcherState
    #: No events were sent since the last progress tick (etcd: ``serverWatchStream.progress``).
    quiet: bool = True


@dataclass(eq=False, slots=True)
class WatchStream:
    """A client's stream of watches on one hub. Made by `WatchHub.open_stream`."""

    hub: WatchHub
    wake: Callable[[], None] = lambda: None
    capacity: int = STREAM_CAPACITY
    watchers: dict[int, Watcher] = field(default_factory=dict)
    _outbox: deque[WatchResponse] = field(default_factory=deque)
    _queued_events: int = 0
    _next_id: int = 0
    #: A progress request waits for every watcher of the stream to be synced (etcd #15220).
    _progress_pending: bool = False
    closed: bool = False

    # --8<-- [start:create]
    def create(self, request: WatchRequest) -> int:
        """Create a watch; queue its created reply. Return its id (-1 if refused)."""
        if request.is_empty_range():
            return self._refuse(EMPTY_RANGE)
        if request.watch_id == 0:  # the stream picks: count up, skip ids in use
            while self._next_id in self.watchers:
                self._next_id += 1
            watch_id = self._next_id
            self._next_id += 1
        elif request.watch_id in self.watchers:
            return self._refuse(DUPLICATE_ID)
        else:
            watch_id = request.watch_id
        # The created reply carries the revision the watch starts after (etcd: ws.Rev()).
        revision = self.hub.store.current_revision
        self.queue(WatchResponse(watch_id, revision, created=True))
        self.watchers[watch_id] = self.hub.add(watch_id, request, self)
        return watch_id

    # --8<-- [end:create]

    def cancel(self, watch_id: int) -> None:
        """Cancel a watch at the client's request; an unknown id gets no reply (as in etcd)."""
        watcher = self.watchers.pop(watch_id, None)
        if watcher is None:
            return
        self.hub.remove(watcher)
        self.queue(WatchResponse(watch_id, self.hub.store.current_revision, canceled=True))
        self.progress_if_synced()

    def request_progress(self) -> None:
        """Ask for a progress reply: sent once every watcher of the stream is synced (the
        fix of etcd #15220 in 3.4.25: 3.4.23 answers at once, ahead of events still owed)."""
        self._progress_pending = True
        self.progress_if_synced()

    def progress_if_synced(self) -> None:
        """Send a pending progress reply if no watcher of the stream is behind."""
        behind = any(w.state is WatcherState.UNSYNCED for w in self.watchers.values())
        if self._progress_pending and not behind:
            self._progress_pending = False
            self.queue(WatchResponse(NO_WATCH_ID, self.hub.store.current_revision))

    def close(self) -> None:
        """The client went away: drop its watchers and whatever it was still owed."""
        for watcher in self.watchers.values():
            self.hub.remove(watcher)
        self.watchers.clear()
        self._outbox.clear()
        self._queued_events = 0
        self.closed = True

    @property
    def has_room(self) -> bool:
        """Can one more reply with events be queued?"""
        return self._queued_events < self.capacity

    @property
    def queued(self) -> int:
        """How many replies wait to be taken."""
        return len(self._outbox)

    def queue(self, response: WatchResponse) -> None:
        """Queue a reply. Replies with events take a slot; control replies never wait."""
        if response.events:
            self._queued_events += 1
        self._outbox.append(response)
        self.wake()

    def take(self, limit: int | None = None) -> list[WatchResponse]:
        """The queued replies, oldest first (at most ``limit``), removed from the outbox."""
        count = len(self._outbox) if limit is None else min(limit, len(self._outbox))
        taken = [self._outbox.popleft() for _ in range(count)]
        self._queued_events -= sum(1 for response in taken if response.events)
        return taken

    def _refuse(self, reason: str) -> int:
        revision = self.hub.store.current_revision
        self.queue(
            WatchResponse(NO_WATCH_ID, revision, created=True, canceled=True, cancel_reason=reason)
        )
        return NO_WATCH_ID
