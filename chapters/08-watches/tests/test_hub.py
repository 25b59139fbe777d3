"""The watch hub, one behaviour per test (etcd's ``mvcc/watchable_store_test.go`` and the
Watch section of ``LEASE-WATCH-TXN-FACTS.md``, item by item)."""

from __future__ import annotations

from kv.mvcc import KeyValue, Store
from kv.watch import (
    FROM_KEY,
    MAX_REVISIONS_PER_REPLY,
    NO_WATCH_ID,
    EventType,
    Filter,
    WatchHub,
    WatchRequest,
    WatchResponse,
    WatchStream,
)


def hub_with(*puts: tuple[bytes, bytes]) -> tuple[Store, WatchHub]:
    store = Store()
    for key, value in puts:
        store.put(key, value)
    return store, WatchHub(store)


def events_of(responses: list[WatchResponse]) -> list[tuple[EventType, bytes, int]]:
    return [(e.type, e.kv.key, e.revision) for r in responses for e in r.events]


def drain(hub: WatchHub, stream: WatchStream) -> list[WatchResponse]:
    """Catch up until nobody is behind, taking everything queued."""
    taken = stream.take()
    for _ in range(10_000):
        if not hub.behind:
            break
        hub.catch_up()
        taken += stream.take()
    return taken


# -- creating and cancelling ----------------------------------------------------------------


def test_the_created_reply_carries_the_current_revision() -> None:
    _, hub = hub_with((b"a", b"1"), (b"b", b"2"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    assert stream.take() == [WatchResponse(0, 3, created=True)]


def test_automatic_ids_count_up_from_zero_per_stream() -> None:
    _, hub = hub_with()
    first, second = hub.open_stream(), hub.open_stream()
    assert [first.create(WatchRequest(b"a")) for _ in range(3)] == [0, 1, 2]
    assert second.create(WatchRequest(b"a")) == 0


def test_a_client_chosen_id_is_used_as_given_and_the_counter_skips_it() -> None:
    _, hub = hub_with()
    stream = hub.open_stream()
    assert stream.create(WatchRequest(b"a", watch_id=7)) == 7
    assert stream.create(WatchRequest(b"a")) == 0
    assert stream.create(WatchRequest(b"a", watch_id=1)) == 1
    assert stream.create(WatchRequest(b"a")) == 2  # 1 is in use: skipped


def test_a_freed_id_is_never_reused_by_the_counter() -> None:
    _, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    stream.create(WatchRequest(b"a"))
    stream.cancel(0)
    assert stream.create(WatchRequest(b"a")) == 2


def test_a_duplicate_id_is_refused_as_created_and_canceled_with_id_minus_one() -> None:
    _, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", watch_id=5))
    stream.take()
    assert stream.create(WatchRequest(b"b", watch_id=5)) == NO_WATCH_ID
    (reply,) = stream.take()
    assert (reply.watch_id, reply.created, reply.canceled) == (-1, True, True)
    assert reply.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"


def test_an_empty_range_is_refused() -> None:
    _, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"b", range_end=b"a"))
    (reply,) = stream.take()
    assert reply.canceled and reply.cancel_reason == "mvcc: watcher range is empty"


def test_cancel_replies_with_the_id_and_stops_events() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    stream.cancel(0)
    store.put(b"a", b"1")
    assert stream.take()[1:] == [WatchResponse(0, 1, canceled=True)]


def test_cancelling_an_unknown_id_sends_nothing() -> None:
    _, hub = hub_with()
    stream = hub.open_stream()
    stream.cancel(3)
    assert stream.take() == []


# -- live events ------------------------------------------------------------------------------


def test_a_synced_watcher_gets_each_write_with_its_own_revision() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    store.put(b"a", b"1")
    store.put(b"b", b"x")
    store.delete_range(b"a")
    replies = stream.take()[1:]
    assert [r.revision for r in replies] == [2, 4]
    assert events_of(replies) == [(EventType.PUT, b"a", 2), (EventType.DELETE, b"a", 4)]


def test_a_delete_event_holds_only_the_key_and_its_mod_revision() -> None:
    store, hub = hub_with((b"a", b"1"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    store.delete_range(b"a")
    (event,) = stream.take()[1].events
    assert event.kv == KeyValue(b"a", b"", 0, 3, 0)


def test_a_write_of_many_keys_is_one_reply_in_operation_order() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"", range_end=FROM_KEY))
    with store.write() as txn:
        txn.put(b"z", b"1")
        txn.put(b"a", b"2")
    (reply,) = stream.take()[1:]
    assert events_of([reply]) == [(EventType.PUT, b"z", 2), (EventType.PUT, b"a", 2)]


def test_a_prefix_watch_sees_only_its_range() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"p/", range_end=b"p0"))
    for key in (b"p", b"p/1", b"p0", b"p/2"):
        store.put(key, b"v")
    assert [key for _, key, _ in events_of(stream.take())] == [b"p/1", b"p/2"]


def test_a_future_start_revision_drops_the_events_below_it() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=4))
    for value in (b"1", b"2", b"3", b"4"):
        store.put(b"a", value)
    assert [rev for _, _, rev in events_of(stream.take())] == [4, 5]


def test_prev_kv_is_the_key_just_before_the_event_and_absent_on_create() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", prev_kv=True))
    store.put(b"a", b"1")
    store.put(b"a", b"2")
    store.delete_range(b"a")
    prevs = [e.prev_kv for r in stream.take() for e in r.events]
    assert prevs[0] is None
    assert prevs[1] is not None and prevs[1].value == b"1"
    assert prevs[2] is not None and prevs[2].value == b"2"


def test_prev_kv_is_silently_absent_when_compacted() -> None:
    store, hub = hub_with((b"a", b"1"), (b"a", b"2"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=3, prev_kv=True))
    store.compact(3)
    (reply,) = drain(hub, stream)[1:]
    assert reply.events[0].prev_kv is None  # revision 2 was compacted


def test_filters_drop_events_and_an_all_filtered_reply_is_not_sent() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", filters=frozenset({Filter.NOPUT})))
    store.put(b"a", b"1")
    store.delete_range(b"a")
    assert events_of(stream.take()[1:]) == [(EventType.DELETE, b"a", 3)]


def test_fragment_is_carried_only_when_asked_for() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", fragment=True))
    stream.create(WatchRequest(b"a"))
    store.put(b"a", b"1")
    assert [r.fragment for r in stream.take()[2:]] == [True, False]


# -- catching up --------------------------------------------------------------------------


def test_a_start_in_the_past_replays_history_in_one_reply_at_the_current_revision() -> None:
    store, hub = hub_with((b"a", b"1"), (b"b", b"2"), (b"a", b"3"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=1))
    assert stream.take() == [WatchResponse(0, 4, created=True)]  # events wait for catch_up
    hub.catch_up()
    (reply,) = stream.take()
    assert reply.revision == 4
    assert events_of([reply]) == [(EventType.PUT, b"a", 2), (EventType.PUT, b"a", 4)]
    store.put(b"a", b"5")
    assert stream.take()[0].revision == 5  # synced now: live, with the write's revision


def test_a_catch_up_reply_holds_at_most_1000_revisions_and_never_splits_one() -> None:
    store, hub = hub_with()
    for number in range(MAX_REVISIONS_PER_REPLY + 10):
        with store.write() as txn:
            txn.put(b"k%d" % number, b"1")
            txn.put(b"j%d" % number, b"2")
    stream = hub.open_stream()
    stream.create(WatchRequest(b"", range_end=FROM_KEY, start_revision=1))
    replies = drain(hub, stream)[1:]
    assert len(replies) == 2
    assert len({e.revision for e in replies[0].events}) == MAX_REVISIONS_PER_REPLY
    assert len(replies[1].events) == 20  # the last 10 revisions, both events of each


def test_compaction_cancels_a_watcher_starting_below_it() -> None:
    store, hub = hub_with((b"a", b"1"), (b"a", b"2"))
    store.compact(3)
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=2))
    hub.catch_up()
    cancel = stream.take()[1]
    assert cancel == WatchResponse(0, 0, canceled=True, compact_revision=3)
    assert not cancel.created and cancel.cancel_reason == ""


def test_a_start_at_the_compaction_revision_is_fine() -> None:
    store, hub = hub_with((b"a", b"1"), (b"a", b"2"))
    store.compact(3)
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=3))
    assert events_of(drain(hub, stream)) == [(EventType.PUT, b"a", 3)]


def test_a_watch_from_the_compaction_revision_sees_a_delete_there_etcd_18089() -> None:
    """etcd PR #18274 keeps the tombstone at the compaction revision (3.4.23 dropped it)."""
    store, hub = hub_with((b"a", b"1"))
    store.delete_range(b"a")
    store.compact(3)
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=3))
    assert events_of(drain(hub, stream)) == [(EventType.DELETE, b"a", 3)]


def test_a_synced_watcher_is_never_cancelled_by_compaction() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    store.put(b"a", b"1")
    store.put(b"a", b"2")
    store.compact(3)
    hub.catch_up()
    assert not any(r.canceled for r in stream.take())


def test_a_compacted_watch_id_stays_taken_until_the_client_cancels_it() -> None:
    store, hub = hub_with((b"a", b"1"), (b"a", b"2"))
    store.compact(3)
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=1, watch_id=4))
    hub.catch_up()
    assert stream.create(WatchRequest(b"a", watch_id=4)) == NO_WATCH_ID
    stream.cancel(4)
    assert stream.create(WatchRequest(b"a", watch_id=4)) == 4


# -- slow readers -------------------------------------------------------------------------


def test_a_full_stream_never_blocks_a_writer_and_loses_no_event() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.capacity = 4
    stream.create(WatchRequest(b"a"))
    for number in range(50):
        store.put(b"a", b"%d" % number)  # nobody reads meanwhile
    assert sum(1 for r in stream.take() if r.events) == 4
    assert hub.behind == 1
    received = drain(hub, stream)
    assert [rev for _, _, rev in events_of(received)] == list(range(6, 52))


def test_a_slow_watcher_does_not_hold_back_one_on_another_stream() -> None:
    store, hub = hub_with()
    slow, fast = hub.open_stream(), hub.open_stream()
    slow.capacity = 1
    slow.create(WatchRequest(b"a"))
    fast.create(WatchRequest(b"a"))
    for number in range(5):
        store.put(b"a", b"%d" % number)
    assert len(fast.take()) == 6


def test_the_stream_is_woken_when_it_has_something_to_send() -> None:
    store, hub = hub_with()
    woken: list[int] = []
    stream = hub.open_stream(wake=lambda: woken.append(1))
    stream.create(WatchRequest(b"a"))
    store.put(b"a", b"1")
    assert len(woken) == 2


# -- progress -----------------------------------------------------------------------------


def test_a_progress_request_on_a_synced_stream_is_answered_at_once() -> None:
    _, hub = hub_with((b"a", b"1"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    stream.take()
    stream.request_progress()
    assert stream.take() == [WatchResponse(NO_WATCH_ID, 2)]


def test_a_progress_request_waits_until_every_watcher_caught_up_etcd_15220() -> None:
    _, hub = hub_with((b"a", b"1"), (b"a", b"2"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=1))
    stream.take()
    stream.request_progress()
    assert stream.take() == []  # 3.4.23 answers here, ahead of events still owed
    hub.catch_up()
    replies = stream.take()
    assert replies[-1] == WatchResponse(NO_WATCH_ID, 3)
    assert max(e.revision for e in replies[0].events) <= replies[-1].revision


def test_progress_notify_tells_a_quiet_synced_watcher_the_current_revision() -> None:
    store, hub = hub_with((b"a", b"1"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", progress_notify=True))
    stream.take()
    store.put(b"b", b"x")
    hub.progress_tick()
    assert stream.take() == [WatchResponse(0, 3)]


def test_progress_notify_skips_a_watcher_that_got_events_since_the_last_tick() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", progress_notify=True))
    store.put(b"a", b"1")
    stream.take()
    hub.progress_tick()
    assert stream.take() == []
    hub.progress_tick()
    assert stream.take() == [WatchResponse(0, 2)]


def test_progress_notify_skips_a_watcher_that_is_behind() -> None:
    _, hub = hub_with((b"a", b"1"))
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a", start_revision=1, progress_notify=True))
    stream.take()
    hub.progress_tick()
    assert stream.take() == []


# -- a store replaced by a leader's snapshot ----------------------------------------------


def test_after_a_restore_a_watcher_reads_on_from_where_it_was_etcd_15271() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    store.put(b"a", b"1")
    newer = Store()
    for value in (b"1", b"2", b"3"):
        newer.put(b"a", value)  # the leader's store: revisions 2, 3, 4
    hub.restore(newer)
    received = drain(hub, stream)
    assert [rev for _, _, rev in events_of(received)] == [2, 3, 4]
    newer.put(b"a", b"4")
    assert events_of(stream.take()) == [(EventType.PUT, b"a", 5)]
    store.put(b"a", b"old")  # the old store is not watched any more
    assert stream.take() == []


def test_a_closed_stream_drops_its_watchers() -> None:
    store, hub = hub_with()
    stream = hub.open_stream()
    stream.create(WatchRequest(b"a"))
    stream.close()
    store.put(b"a", b"1")
    assert stream.take() == [] and not hub.synced
