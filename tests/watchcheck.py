"""The checks etcd's robustness tests make on watch streams (chapter 8), for any test to use.

etcd's ``tests/robustness/validate/watch.go`` checks every watch stream a run opened against the
history of the run. The same checks here, over `kv.watch.Event`s (a gRPC test converts etcd's
messages first, with `from_pb`):

* **ordered** -- event revisions never go back; **unique** -- no (revision, key) twice;
* **atomic** -- a revision's events for the watch come in one reply, never split;
* **bookmarkable** -- no event at or below a progress reply's revision comes after it;
* **reliable** -- the events between the first and the last one received are exactly the
  history's events for the watch in that window (filters applied);
* **resumable** -- the first event is the first one of the history at or after the start;
* **prev_kv correct** -- each prev_kv is the key as it was just before the event (or absent,
  only when the watch did not ask, the key did not exist, or that revision was compacted).

A watch that was cancelled (compaction) is checked up to its cancel. Each check returns the
problems it found, as sentences; an empty list is a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from kv.mvcc import KeyValue, Store
from kv.watch import Event, EventType, Filter, WatchRequest, WatchResponse, event_of


@dataclass(slots=True)
class ObservedWatch:
    """One watch as a client saw it: what it asked for, and every reply, in order."""

    request: WatchRequest
    replies: list[WatchResponse] = field(default_factory=list)

    def events(self) -> list[Event]:
        return [event for reply in self.replies for event in reply.events]


def history_of(store: Store) -> list[Event]:
    """Every event of an uncompacted store's history, in revision order."""
    return [event_of(stored, entry) for stored, entry in store.changes(store.current_revision)]


def check_watch(
    watch: ObservedWatch, history: Sequence[Event], *, compacted: int = -1
) -> list[str]:
    """Every check on one watch; ``history`` is the whole run's, ``compacted`` the highest
    compaction revision any member reached (prev_kv may be absent at or below it)."""
    return [
        *check_ordered(watch),
        *check_unique(watch),
        *check_atomic(watch, history),
        *check_bookmarkable(watch),
        *check_reliable(watch, history),
        *check_resumable(watch, history),
        *check_prev_kv(watch, history, compacted),
    ]


def check_ordered(watch: ObservedWatch) -> list[str]:
    revisions = [event.revision for event in watch.events()]
    return [
        f"event at revision {later} after one at {earlier}"
        for earlier, later in pairwise(revisions)
        if later < earlier
    ]


def check_unique(watch: ObservedWatch) -> list[str]:
    seen: set[tuple[int, bytes]] = set()
    problems = []
    for event in watch.events():
        if (event.revision, event.kv.key) in seen:
            problems.append(f"{event.kv.key!r} at revision {event.revision} twice")
        seen.add((event.revision, event.kv.key))
    return problems


def check_atomic(watch: ObservedWatch, history: Sequence[Event]) -> list[str]:
    wanted = _wanted(watch.request, history)
    problems = []
    for reply in watch.replies:
        for revision in {event.revision for event in reply.events}:
            got = [e.kv.key for e in reply.events if e.revision == revision]
            expected = [e.kv.key for e in wanted if e.revision == revision]
            if got != expected:
                problems.append(f"revision {revision} split or incomplete: {got} != {expected}")
    return problems


def check_bookmarkable(watch: ObservedWatch) -> list[str]:
    problems, progress = [], 0
    for reply in watch.replies:
        for event in reply.events:
            if event.revision <= progress:
                problems.append(f"event at {event.revision} after progress at {progress}")
        if reply.is_progress:
            progress = max(progress, reply.revision)
    return problems


def check_reliable(watch: ObservedWatch, history: Sequence[Event]) -> list[str]:
    events = watch.events()
    if not events:
        return []
    first, last = events[0].revision, events[-1].revision
    expected = [e for e in _wanted(watch.request, history) if first <= e.revision <= last]
    if _shape(events) != _shape(expected):
        return [f"events {_shape(events)} are not the history's {_shape(expected)}"]
    return []


def check_resumable(watch: ObservedWatch, history: Sequence[Event]) -> list[str]:
    events, start = watch.events(), watch.request.start_revision
    if not events or start <= 0:
        return []
    expected = next((e for e in _wanted(watch.request, history) if e.revision >= start), None)
    got = events[0]
    if expected is None or (expected.revision, expected.kv.key) != (got.revision, got.kv.key):
        return [f"first event {got.revision} is not the first at or after {start}"]
    return []


def check_prev_kv(watch: ObservedWatch, history: Sequence[Event], compacted: int) -> list[str]:
    if not watch.request.prev_kv:
        return [f"prev_kv sent unasked at {e.revision}" for e in watch.events() if e.prev_kv]
    before = _states_before(history)
    problems = []
    for event in watch.events():
        expected = before.get((event.revision, event.kv.key))
        if event.prev_kv == expected:
            continue
        if event.prev_kv is None and event.revision - 1 < compacted:
            continue  # etcd reads prev_kv at send time: a compacted revision leaves it out
        problems.append(f"prev_kv at {event.revision}: {event.prev_kv} != {expected}")
    return problems


def _wanted(request: WatchRequest, history: Iterable[Event]) -> list[Event]:
    return [e for e in history if request.matches(e.kv.key) and request.wants(e)]


def _shape(events: Iterable[Event]) -> list[tuple[int, int, bytes, bytes]]:
    return [(e.revision, e.type, e.kv.key, e.kv.value) for e in events]


def _states_before(history: Iterable[Event]) -> dict[tuple[int, bytes], KeyValue | None]:
    """For each event, the key as it was at the revision before the event's."""
    live: dict[bytes, KeyValue | None] = {}
    at_revision_start: dict[bytes, KeyValue | None] = {}
    before: dict[tuple[int, bytes], KeyValue | None] = {}
    revision = 0
    for event in history:
        if event.revision != revision:
            revision, at_revision_start = event.revision, dict(live)
        key = event.kv.key
        before[(revision, key)] = at_revision_start.get(key)
        live[key] = event.kv if event.type is EventType.PUT else None
    return before


# -- etcd's messages as the checker's values -----------------------------------------------


def request_from_pb(create: rpc_pb2.WatchCreateRequest) -> WatchRequest:
    return WatchRequest(
        key=create.key,
        range_end=create.range_end,
        start_revision=create.start_revision,
        prev_kv=create.prev_kv,
        filters=frozenset(Filter(f) for f in create.filters if f in (0, 1)),
        progress_notify=create.progress_notify,
        fragment=create.fragment,
        watch_id=create.watch_id,
    )


def kv_from_pb(kv: kv_pb2.KeyValue) -> KeyValue:
    return KeyValue(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def from_pb(response: rpc_pb2.WatchResponse) -> WatchResponse:
    """etcd's reply as a `WatchResponse` (``fragment`` means "more pieces follow" here)."""
    events = tuple(
        Event(
            EventType(e.type),
            kv_from_pb(e.kv),
            kv_from_pb(e.prev_kv) if e.HasField("prev_kv") else None,
        )
        for e in response.events
    )
    return WatchResponse(
        response.watch_id,
        response.header.revision,
        events,
        created=response.created,
        canceled=response.canceled,
        compact_revision=response.compact_revision,
        cancel_reason=response.cancel_reason,
        fragment=response.fragment,
    )
