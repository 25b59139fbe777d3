"""The live watch feed's model: what the Watch streams said, as lines (chapter 8's Watch API in
attach mode). Pure: the replies come in as etcd's messages, the lines go out as text.

The feed keeps the last `FEED_SIZE` events and where it stands: every revision up to
`Feed.seen` has been delivered. When a member dies the feed watches again on another member
from ``seen + 1`` -- the last *event's* revision + 1, or the ``created`` reply's revision
before any event -- never from a later reply's header revision, which may be ahead of the
events sent (etcd PR #15275): so no event is lost or repeated across members.

A watcher cancelled because its start revision was compacted away (``compact_revision`` set)
cannot resume without losing events: the feed stops and says which revisions are gone, as
``etcdctl watch`` does ("watch was canceled (required revision has been compacted)").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from tui.attach.browse import preview

#: Events kept (and shown): the newest.
FEED_SIZE = 500
#: Characters of a value shown in a line.
VALUE_WIDTH = 30


class Kind(Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event of the feed: its revision, PUT or DELETE, the key, the value after it (empty
    for a DELETE) and the value before it (None: not asked, or the key was new)."""

    revision: int
    kind: Kind
    key: bytes
    value: bytes
    prev: bytes | None

    @classmethod
    def from_pb(cls, event: kv_pb2.Event) -> FeedEvent:
        kind = Kind.DELETE if event.type == kv_pb2.Event.DELETE else Kind.PUT
        prev = event.prev_kv.value if event.HasField("prev_kv") else None
        return cls(event.kv.mod_revision, kind, event.kv.key, event.kv.value, prev)

    def line(self, *, show_prev: bool) -> str:
        """``  12 PUT    a/b = hello  (was: hi)``."""
        text = f"{self.revision:>6} {self.kind.value:<6} {preview(self.key)}"
        if self.kind is Kind.PUT:
            text += f" = {preview(self.value, VALUE_WIDTH)}"
        if show_prev:
            was = "(none)" if self.prev is None else preview(self.prev, VALUE_WIDTH)
            text += f"  (was: {was})"
        return text


@dataclass(slots=True)
class Feed:
    """One watch of ``[key, range_end)``: the events kept, where it stands, paused or not."""

    key: bytes = b"\0"
    range_end: bytes = b"\0"
    prev_kv: bool = False
    size: int = FEED_SIZE
    events: deque[FeedEvent] = field(init=False)
    #: Every revision up to this one has been delivered (0: nothing yet, not even created).
    seen: int = 0
    #: The watch can not go on: its next revision was compacted away.
    compacted: int = 0
    paused: bool = False
    #: Events that came while paused (not on the screen yet).
    unseen: int = 0

    def __post_init__(self) -> None:
        self.events = deque(maxlen=self.size)

    @property
    def prefix(self) -> bytes:
        """The prefix watched, as typed (empty: every key)."""
        return b"" if (self.key, self.range_end) == (b"\0", b"\0") else self.key

    @property
    def start_revision(self) -> int:
        """Where a (new) watch starts: right after what was seen; 0 (from now) at first."""
        return self.seen + 1 if self.seen else 0

    @property
    def stopped(self) -> bool:
        return self.compacted > 0

    def receive(self, response: rpc_pb2.WatchResponse) -> tuple[list[FeedEvent], list[str]]:
        """Take one reply: the new events (none while paused: they wait for `resume`) and
        notes about the watch itself (created, cancelled and why)."""
        notes = []
        if response.created and not self.seen:
            self.seen = response.header.revision
            notes.append(f"watching from revision {self.seen + 1}")
        new = [FeedEvent.from_pb(e) for e in response.events if e.kv.mod_revision > self.seen]
        self.events.extend(new)
        if new:
            self.seen = new[-1].revision
        if response.canceled:
            notes.append(self.cancelled(response))
        if self.paused:
            self.unseen += len(new)
            return [], notes
        return new, notes

    def cancelled(self, response: rpc_pb2.WatchResponse) -> str:
        if response.compact_revision:
            self.compacted = response.compact_revision
            return (
                f"watch cancelled: revisions {self.seen + 1}..{self.compacted - 1} were "
                f"compacted (etcd: required revision has been compacted); events there are "
                "gone -- enter a prefix to watch again from now"
            )
        reason = f": {response.cancel_reason}" if response.cancel_reason else ""
        return f"watch cancelled by the member{reason}"

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> list[FeedEvent]:
        """Unpause: the events that came meanwhile (those still kept)."""
        self.paused = False
        waiting = list(self.events)[-self.unseen :] if self.unseen else []
        self.unseen = 0
        return waiting
