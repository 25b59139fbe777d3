"""The watch hub: every watcher of a member, fed by the store's writes (chapter 8).

Theory of operation
-------------------
A watcher is a cursor over the store's history: "send me every change to these keys from
revision ``next_revision`` on". The hub keeps every watcher in one of two groups (etcd:
``mvcc/watchable_store.go``, ``synced`` and ``unsynced``):

* **Synced** watchers have been sent everything up to the store's current revision. When a
  write request ends, the store hands the hub its changes (`kv.mvcc.Store.observe`), and the
  hub queues, for each synced watcher the write touches, one reply with all of that write's
  events for it: one revision is one reply, never split, so a client sees a transaction
  whole.
* **Unsynced** watchers are behind: they started in the past, or their stream's outbox was
  full when a write came (a slow reader is never waited for). `catch_up`, which the driver
  calls every 100 ms while there are any, reads the history they missed and queues it, at most
  1000 revisions per reply, never splitting one. A watcher that reaches the current revision
  becomes synced.

If the history a watcher still needs was compacted away, it is told once, with
``compact_revision`` (etcd: ``chooseAll``), and stops. The hub is pure: no clock, no I/O.
The driver calls `catch_up` and `progress_tick` on its timers and sends what the streams
hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import groupby

from kv.mvcc import CompactedError, KeyValue, Store
from kv.mvcc.store import Change
from kv.watch.events import Event, WatchRequest, WatchResponse, event_of
from kv.watch.stream import Watcher, WatcherState, WatchStream

#: The most revisions one catch-up reply holds (etcd: ``watchBatchMaxRevs``).
MAX_REVISIONS_PER_REPLY = 1000


class WatchHub:
    """Every watcher of one store, synced or unsynced."""

    def __init__(self, store: Store, *, stream_capacity: int | None = None) -> None:
        self.store = store
        self.stream_capacity = stream_capacity
        # dicts, not sets: iteration in insertion order keeps the hub deterministic.
        self.synced: dict[Watcher, None] = {}
        self.unsynced: dict[Watcher, None] = {}
        store.observe(self._on_write)

    def open_stream(self, wake: Callable[[], None] = lambda: None) -> WatchStream:
        """A new client stream; ``wake`` is called whenever it gets something to send."""
        stream = WatchStream(self, wake)
        if self.stream_capacity is not None:
            stream.capacity = self.stream_capacity
        return stream

    def add(self, watch_id: int, request: WatchRequest, stream: WatchStream) -> Watcher:
        """Register a watcher (`WatchStream.create` calls this after queueing its reply)."""
        current = self.store.current_revision
        start = request.start_revision
        # From the next write, or from a future revision: nothing to read, so synced at once
        # (etcd: ``synced := startRev > currentRev || startRev == 0``).
        if start == 0 or start > current:
            watcher = Watcher(watch_id, request, stream, start or current + 1, WatcherState.SYNCED)
            self.synced[watcher] = None
        else:
            watcher = Watcher(watch_id, request, stream, start, WatcherState.UNSYNCED)
            self.unsynced[watcher] = None
        return watcher

    def remove(self, watcher: Watcher) -> None:
        self.synced.pop(watcher, None)
        self.unsynced.pop(watcher, None)

    @property
    def behind(self) -> int:
        """How many watchers wait for `catch_up` (the driver's cue to call it)."""
        return len(self.unsynced)

    # --8<-- [start:notify]
    def _on_write(self, revision: int, changes: Sequence[Change]) -> None:
        """A write request ended: hand its events to the synced watchers it touches."""
        if not self.synced:
            return  # nobody to tell (most writes on most members): build no events
        events = [event_of(stored, entry) for stored, entry in changes]
        prev_kvs = PrevKvs(self.store)
        for watcher in list(self.synced):
            if watcher.next_revision > revision:
                continue  # a watch from a future revision
            mine = [event for event in events if watcher.request.matches(event.kv.key)]
            if not mine:
                continue
            if not watcher.stream.has_room:
                # A slow reader: never wait for it. It reads this revision from history later.
                self._fall_behind(watcher, revision)
                continue
            self._send(watcher, revision, mine, prev_kvs)
            watcher.next_revision = revision + 1

    # --8<-- [end:notify]

    # --8<-- [start:catch_up]
    def catch_up(self) -> None:
        """Send unsynced watchers what they missed; those that reach the present are synced."""
        ready = [w for w in self.unsynced if w.stream.has_room]
        if not ready:
            return
        streams = {watcher.stream: None for watcher in ready}
        current, compacted = self.store.current_revision, self.store.compact_revision
        for watcher in [w for w in ready if w.next_revision < compacted]:
            self._cancel_compacted(watcher, compacted)
        ready = [w for w in ready if w.state is WatcherState.UNSYNCED]
        if ready:
            self._replay(ready, current)
        for stream in streams:
            stream.progress_if_synced()

    def _replay(self, ready: list[Watcher], current: int) -> None:
        since = min(watcher.next_revision for watcher in ready)
        history = [event_of(stored, entry) for stored, entry in self.store.changes(current, since)]
        prev_kvs = PrevKvs(self.store)
        for watcher in ready:
            mine = [
                event
                for event in history
                if event.revision >= watcher.next_revision and watcher.request.matches(event.kv.key)
            ]
            batch, more_from = _first_revisions(mine, MAX_REVISIONS_PER_REPLY)
            if batch:
                # A catch-up reply carries the store's revision, not its last event's.
                self._send(watcher, current, batch, prev_kvs)
            if more_from is not None:
                watcher.next_revision = more_from
                continue
            # Never lower a future start (etcd #20221 reset it and replayed older events).
            watcher.next_revision = max(watcher.next_revision, current + 1)
            self._sync(watcher)

    # --8<-- [end:catch_up]

    def progress_tick(self) -> None:
        """The progress-notify timer fired (etcd: every 10 min): tell each quiet, synced
        watcher that asked for it the current revision. A watcher sent events since the last
        tick, or one that is behind, is told nothing."""
        for watcher in [*self.synced, *self.unsynced]:
            if not watcher.request.progress_notify:
                continue
            synced = watcher.state is WatcherState.SYNCED
            if synced and watcher.quiet and watcher.stream.has_room:
                revision = self.store.current_revision
                watcher.stream.queue(WatchResponse(watcher.id, revision))
            watcher.quiet = True

    def restore(self, store: Store) -> None:
        """The store was replaced by a leader's snapshot: every watcher reads on from the
        new store's history, from where it was (etcd: ``watchableStore.Restore``; #15271 was
        events going back in time here)."""
        # A synced watcher has seen every revision of the old store, matching or not.
        seen = self.store.current_revision + 1
        self.store.forget(self._on_write)
        self.store = store
        store.observe(self._on_write)
        for watcher in list(self.synced):
            self._fall_behind(watcher, max(watcher.next_revision, seen))

    def _send(
        self, watcher: Watcher, revision: int, events: Sequence[Event], prev_kvs: PrevKvs
    ) -> None:
        request = watcher.request
        if request.prev_kv:
            events = [prev_kvs.add_to(event) for event in events]
        wanted = tuple(event for event in events if request.wants(event))
        if not wanted:
            return  # a reply whose events are all filtered out is not sent
        watcher.quiet = False
        watcher.stream.queue(WatchResponse(watcher.id, revision, wanted, fragment=request.fragment))

    def _fall_behind(self, watcher: Watcher, next_revision: int) -> None:
        self.synced.pop(watcher, None)
        watcher.next_revision = next_revision
        watcher.state = WatcherState.UNSYNCED
        self.unsynced[watcher] = None

    def _sync(self, watcher: Watcher) -> None:
        self.unsynced.pop(watcher, None)
        watcher.state = WatcherState.SYNCED
        self.synced[watcher] = None

    def _cancel_compacted(self, watcher: Watcher, compacted: int) -> None:
        # etcd sends it with an empty header (revision 0) and leaves the id taken.
        self.unsynced.pop(watcher, None)
        watcher.state = WatcherState.COMPACTED
        response = WatchResponse(watcher.id, 0, canceled=True, compact_revision=compacted)
        watcher.stream.queue(response)


class PrevKvs:
    """prev_kv lookups for one batch of replies, each done once: a key as it was just
    before an event (etcd reads ``Range(key, mod_revision - 1)`` at send time; a compacted
    revision leaves prev_kv out, silently)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._found: dict[tuple[bytes, int], KeyValue | None] = {}

    def add_to(self, event: Event) -> Event:
        at = (event.kv.key, event.revision - 1)
        if at not in self._found:
            self._found[at] = self._lookup(*at)
        return Event(event.type, event.kv, self._found[at])

    def _lookup(self, key: bytes, revision: int) -> KeyValue | None:
        try:
            kvs = self._store.range(key, revision=revision).kvs
        except CompactedError:
            return None
        return kvs[0] if kvs else None


def _first_revisions(events: Iterable[Event], limit: int) -> tuple[list[Event], int | None]:
    """The events of the first ``limit`` revisions among ``events``, and the revision after
    them if there are more (a revision's events are never split between replies)."""
    batch: list[Event] = []
    for count, (revision, group) in enumerate(groupby(events, key=lambda e: e.revision)):
        if count == limit:
            return batch, revision
        batch.extend(group)
    return batch, None
