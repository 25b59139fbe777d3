"""What a watch asks for and what it gets back, as plain values (chapter 8).

A watch names a key or a range, a revision to start from and a few options; what comes back
is a stream of `WatchResponse`s, each holding the `Event`s of one or more revisions. These are
the fields of etcd's ``WatchCreateRequest``, ``WatchResponse`` and ``mvccpb.Event``, without
protobuf: the hub is pure, and the gRPC service (`kv.server.requests.watch_service`) turns
them into etcd's messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kv.mvcc import HistoryEntry, KeyValue, Revision

#: A ``range_end`` of one zero byte: every key from ``key`` on (etcd's "from key").
FROM_KEY = b"\0"
#: The watch id the server answers with when there is no watch to name (a progress reply, a
#: refused create): etcd's ``clientv3.InvalidWatchID``.
NO_WATCH_ID = -1


class EventType(enum.IntEnum):
    """``mvccpb.Event.EventType``: the numbers are etcd's."""

    PUT = 0
    DELETE = 1


class Filter(enum.IntEnum):
    """``WatchCreateRequest.FilterType``: what a watcher does not want to see."""

    NOPUT = 0
    NODELETE = 1


@dataclass(frozen=True, slots=True)
class Event:
    """One change of one key. A DELETE's ``kv`` holds only the key and its ``mod_revision``."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


def event_of(stored: Revision, entry: HistoryEntry) -> Event:
    """The event a stored change is: a put, or a tombstone (which stores no mod_revision)."""
    if entry.tombstone:
        return Event(EventType.DELETE, KeyValue(entry.kv.key, b"", 0, stored.main, 0))
    return Event(EventType.PUT, entry.kv)


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """A ``WatchCreateRequest``: which keys, from which revision, with which options.

    ``start_revision`` 0 means "from the next write"; ``watch_id`` 0 lets the stream pick one.
    """

    key: bytes
    range_end: bytes = b""
    start_revision: int = 0
    prev_kv: bool = False
    filters: frozenset[Filter] = frozenset()
    progress_notify: bool = False
    fragment: bool = False
    watch_id: int = 0

    def is_empty_range(self) -> bool:
        """A range that can hold no key: etcd refuses the watch (``ErrEmptyWatcherRange``)."""
        return self.range_end not in (b"", FROM_KEY) and self.key >= self.range_end

    def matches(self, key: bytes) -> bool:
        """Is ``key`` one of the watched keys?"""
        if self.range_end == b"":
            return key == self.key
        if self.range_end == FROM_KEY:
            return key >= self.key
        return self.key <= key < self.range_end

    def wants(self, event: Event) -> bool:
        """Does no filter drop ``event``?"""
        dropped = Filter.NOPUT if event.type is EventType.PUT else Filter.NODELETE
        return dropped not in self.filters


@dataclass(frozen=True, slots=True)
class WatchResponse:
    """One ``WatchResponse``. ``revision`` is its header's revision (0 on a compaction cancel,
    as etcd sends it); ``fragment`` says the watch asked for large replies to be split."""

    watch_id: int
    revision: int
    events: tuple[Event, ...] = ()
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    fragment: bool = False

    @property
    def is_progress(self) -> bool:
        """An empty reply that only says "you have seen everything up to ``revision``"."""
        return not (self.events or self.created or self.canceled or self.compact_revision)
