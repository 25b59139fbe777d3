"""The WATCH tab: a live feed of every change under a prefix (chapter 8's Watch API).

One Watch stream (`kv.client.KVClient.watch`) to one member at a time, in a worker: each
event is shown as it arrives (`tui.attach.feed`). When the member dies or drops the stream,
the feed says so and watches again on another member -- the ones the poll last saw up first
-- from the revision after the last one it showed, so nothing is lost or shown twice. The
stream asks for a leader (``hasleader``, as etcdctl does): a member cut off from its quorum
refuses it and the feed moves on.

Keys: ``/`` the prefix (enter starts a new watch from now; empty: every key), ``space``
pauses and resumes the screen (events keep coming and are kept), ``v`` shows the values
before each event (a new watch with ``prev_kv``).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from kv.api.etcdserverpb import rpc_pb2
from kv.server.errors import EtcdError
from tui.attach.browse import parse_bytes, prefix_range, preview
from tui.attach.feed import FEED_SIZE, Feed, FeedEvent
from tui.attach.poller import Poller, describe_error

#: Seconds between two attempts when no member takes the watch (pacing, not correctness).
RETRY_PAUSE = 0.3


class WatchFeed(Vertical):
    """A prefix, the state of the watch, and the events as they come."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "choose_prefix", "Watch prefix"),
        Binding("space", "toggle_pause", "Pause/resume feed"),
        Binding("v", "toggle_prev", "Previous values"),
    ]

    DEFAULT_CSS = """
    WatchFeed { height: 1fr; }
    WatchFeed Input { height: 3; }
    WatchFeed .state { height: 1; color: $text-muted; padding: 0 1; }
    WatchFeed RichLog { height: 1fr; }
    """

    def __init__(self, poller: Poller, *, size: int = FEED_SIZE) -> None:
        super().__init__()
        self.poller = poller
        self.keep = size
        self.feed = Feed(size=size)
        #: The endpoint the feed watches now (None: between two members).
        self.endpoint: str | None = None
        #: Every line written to the log, in order (what a test reads).
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="prefix to watch (enter: watch; empty: every key)", id="watch-on")
        yield Static("", classes="state")
        yield RichLog(id="watch-log", max_lines=self.keep, markup=False)

    def on_mount(self) -> None:
        self.follow()

    # -- the stream ---------------------------------------------------------------------

    @property
    def member(self) -> str | None:
        """The name of the member watched now (its endpoint until the poll learns names)."""
        return None if self.endpoint is None else self.name_of(self.endpoint)

    def name_of(self, endpoint: str) -> str:
        return next((r.name for r in self.poller.rows() if r.endpoint == endpoint), endpoint)

    def candidates(self, avoid: str | None) -> list[str]:
        """The endpoints to try, in order: up before down, the one that failed last."""
        rows = sorted(self.poller.rows(), key=lambda r: (r.endpoint == avoid, not r.up))
        return [row.endpoint for row in rows]

    @work(exclusive=True, group="watch")
    async def follow(self) -> None:
        """Watch on one member after another until the feed stops (or a new one replaces it)."""
        feed, failed = self.feed, None
        while not feed.stopped:
            for endpoint in self.candidates(failed):
                failed = await self.watch_on(feed, endpoint)
                if failed is None or feed is not self.feed:
                    return
            await asyncio.sleep(RETRY_PAUSE)

    async def watch_on(self, feed: Feed, endpoint: str) -> str | None:
        """One stream on one member until it ends: the endpoint if it failed, else None."""
        client = self.poller.client_for(endpoint)
        watch = client.watch(
            feed.key,
            feed.range_end,
            start_revision=feed.start_revision,
            prev_kv=feed.prev_kv,
            require_leader=True,
        )
        self.endpoint = endpoint
        self.show_state()
        try:
            async for response in watch:
                self.take(feed, response)
        except (EtcdError, grpc.RpcError, OSError) as error:
            self.endpoint = None
            self.show_state()
            if watch.watch_id is not None:  # a member that never took it is no news
                name, why, start = (
                    self.name_of(endpoint),
                    describe_error(error),
                    feed.start_revision,
                )
                self.note(
                    f"{name} dropped the watch ({why}); resuming on another member from "
                    f"revision {start or 'now'}"
                )
            return endpoint
        finally:
            watch.close()
        return None if feed.stopped else endpoint

    def take(self, feed: Feed, response: rpc_pb2.WatchResponse) -> None:
        events, notes = feed.receive(response)
        for note in notes:
            self.note(f"{self.member}: {note}")
        self.write(events)
        self.show_state()

    # -- the screen ---------------------------------------------------------------------

    def write(self, events: list[FeedEvent]) -> None:
        for event in events:
            self.log_line(event.line(show_prev=self.feed.prev_kv))

    def note(self, text: str) -> None:
        self.log_line(f"-- {text}")

    def log_line(self, line: str) -> None:
        self.lines.append(line)
        del self.lines[: -self.keep]
        for log in self.query("#watch-log").results(RichLog):  # none while the app closes
            log.write(line)

    def show_state(self) -> None:
        feed = self.feed
        prefix = preview(feed.prefix) or "(every key)"
        where = f"on {self.member}" if self.member else "looking for a member"
        state = f"paused, {feed.unseen} new" if feed.paused else "live"
        if feed.stopped:
            state = f"stopped: compacted at {feed.compacted}"
        prev = " · previous values" if feed.prev_kv else ""
        line = f"prefix {prefix} · {where} · seen revision {feed.seen} · {state}{prev}"
        for static in self.query(".state").results(Static):
            static.update(line)

    # -- actions ------------------------------------------------------------------------

    def restart(self, key: bytes, range_end: bytes, *, prev_kv: bool) -> None:
        """A new watch from now (the old stream ends: the worker is exclusive)."""
        self.feed = Feed(key, range_end, prev_kv=prev_kv, size=self.keep)
        self.note(f"new watch: prefix {preview(self.feed.prefix) or '(every key)'}")
        self.follow()

    @on(Input.Submitted, "#watch-on")
    def choose(self, event: Input.Submitted) -> None:
        try:
            prefix = parse_bytes(event.value)
        except ValueError as error:
            self.notify(f"not a prefix: {error}", severity="error")
            return
        self.restart(*prefix_range(prefix), prev_kv=self.feed.prev_kv)
        self.query_one("#watch-log", RichLog).focus()

    def action_choose_prefix(self) -> None:
        self.query_one("#watch-on", Input).focus()

    def action_toggle_pause(self) -> None:
        if self.feed.paused:
            self.write(self.feed.resume())
        else:
            self.feed.pause()
        self.show_state()

    def action_toggle_prev(self) -> None:
        self.restart(self.feed.key, self.feed.range_end, prev_kv=not self.feed.prev_kv)
