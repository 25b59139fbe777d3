"""kv.watch: watches, a cursor over the store's history (chapter 8). Pure: no I/O, no clock.

Modules, in reading order:

* `events` -- `WatchRequest`, `Event`, `WatchResponse`: what a watch asks for and gets back.
* `stream` -- `WatchStream`: one client's watches, their ids, and its bounded outbox.
* `hub` -- `WatchHub`: every watcher of a member, synced or unsynced, fed by the store's
  writes (`kv.mvcc.Store.observe`) and catching up from its history.

The gRPC service that drives a hub (timers, sending, require-leader) is the server's:
`kv.server.requests.watch_service`.
"""

from kv.watch.events import (
    FROM_KEY,
    NO_WATCH_ID,
    Event,
    EventType,
    Filter,
    WatchRequest,
    WatchResponse,
    event_of,
)
from kv.watch.hub import MAX_REVISIONS_PER_REPLY, WatchHub
from kv.watch.stream import STREAM_CAPACITY, Watcher, WatcherState, WatchStream

__all__ = [
    "FROM_KEY",
    "MAX_REVISIONS_PER_REPLY",
    "NO_WATCH_ID",
    "STREAM_CAPACITY",
    "Event",
    "EventType",
    "Filter",
    "WatchHub",
    "WatchRequest",
    "WatchResponse",
    "WatchStream",
    "Watcher",
    "WatcherState",
    "event_of",
]
