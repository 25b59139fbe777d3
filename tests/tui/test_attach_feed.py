"""The watch feed's model (`tui.attach.feed`): etcd's replies in, events and notes out.

Pure: each test builds etcd's ``WatchResponse`` messages by hand, as a member would send them.
"""

from __future__ import annotations

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from tui.attach.feed import Feed, Kind


def created(revision: int) -> rpc_pb2.WatchResponse:
    return rpc_pb2.WatchResponse(
        header=rpc_pb2.ResponseHeader(revision=revision), watch_id=1, created=True
    )


def put(revision: int, key: bytes, value: bytes, prev: bytes | None = None) -> kv_pb2.Event:
    event = kv_pb2.Event(
        type=kv_pb2.Event.PUT, kv=kv_pb2.KeyValue(key=key, value=value, mod_revision=revision)
    )
    if prev is not None:
        event.prev_kv.CopyFrom(kv_pb2.KeyValue(key=key, value=prev))
    return event


def reply(*events: kv_pb2.Event) -> rpc_pb2.WatchResponse:
    return rpc_pb2.WatchResponse(watch_id=1, events=events)


def test_before_any_reply_a_watch_starts_from_now() -> None:
    assert Feed().start_revision == 0


def test_the_created_reply_fixes_where_a_resumed_watch_starts() -> None:
    feed = Feed()
    _, notes = feed.receive(created(7))
    assert feed.start_revision == 8 and notes == ["watching from revision 8"]


def test_a_resumed_watch_starts_after_the_last_event_not_a_later_header() -> None:
    feed = Feed()
    feed.receive(created(7))
    event_reply = reply(put(8, b"a", b"1"))
    event_reply.header.revision = 12  # the header may be ahead of the events (etcd #15275)
    feed.receive(event_reply)
    assert feed.start_revision == 9


def test_an_event_seen_on_the_member_before_is_not_shown_again() -> None:
    feed = Feed()
    feed.receive(created(7))
    feed.receive(reply(put(8, b"a", b"1")))
    new, _ = feed.receive(reply(put(8, b"a", b"1"), put(9, b"a", b"2")))
    assert [e.revision for e in new] == [9]


def test_the_feed_keeps_only_the_newest_events() -> None:
    feed = Feed(size=2)
    feed.receive(created(1))
    for revision in (2, 3, 4):
        feed.receive(reply(put(revision, b"k", b"v")))
    assert [e.revision for e in feed.events] == [3, 4]


def test_a_paused_feed_holds_new_events_until_resumed() -> None:
    feed = Feed()
    feed.receive(created(1))
    feed.pause()
    new, _ = feed.receive(reply(put(2, b"k", b"v")))
    assert new == [] and feed.unseen == 1
    assert [e.revision for e in feed.resume()] == [2]
    assert feed.unseen == 0


def test_a_line_says_revision_put_key_value_and_the_value_before() -> None:
    feed = Feed(prev_kv=True)
    feed.receive(created(1))
    new, _ = feed.receive(reply(put(2, b"k", b"new", prev=b"old")))
    assert new[0].kind is Kind.PUT
    assert new[0].line(show_prev=True) == "     2 PUT    k = new  (was: old)"


def test_a_delete_is_a_word_and_shows_no_value() -> None:
    event = kv_pb2.Event(type=kv_pb2.Event.DELETE, kv=kv_pb2.KeyValue(key=b"k", mod_revision=5))
    feed = Feed()
    feed.receive(created(4))
    new, _ = feed.receive(reply(event))
    assert new[0].line(show_prev=False) == "     5 DELETE k"


def test_a_compaction_cancel_stops_the_feed_and_says_which_revisions_are_gone() -> None:
    feed = Feed()
    feed.receive(created(4))
    _, notes = feed.receive(rpc_pb2.WatchResponse(canceled=True, compact_revision=9))
    assert feed.stopped and feed.compacted == 9
    assert notes[0].startswith("watch cancelled: revisions 5..8 were compacted")
