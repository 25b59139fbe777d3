"""Properties of the hub under any interleaving (hypothesis): whatever the writes, the
compactions, the readers' pace and the streams' capacity, every watch passes etcd's
robustness checks (`tests.watchcheck`), and one that is not cancelled misses nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kv.mvcc import Store
from kv.mvcc.store import Change
from kv.watch import FROM_KEY, Event, Filter, WatchHub, WatchRequest, event_of
from tests.watchcheck import ObservedWatch, check_watch

KEYS = [b"a", b"b", b"c", b"d"]

requests = st.builds(
    WatchRequest,
    key=st.sampled_from(KEYS),
    range_end=st.sampled_from([b"", b"c", FROM_KEY]),
    start_revision=st.integers(0, 12),
    prev_kv=st.booleans(),
    filters=st.frozensets(st.sampled_from(list(Filter)), max_size=1),
).filter(lambda r: not r.is_empty_range())

steps = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.lists(st.sampled_from(KEYS), min_size=1, max_size=3)),
        st.tuples(st.just("delete"), st.sampled_from(KEYS)),
        st.tuples(st.just("watch"), requests),
        st.tuples(st.just("read"), st.integers(0, 3)),
        st.tuples(st.just("catch_up"), st.none()),
        st.tuples(st.just("compact"), st.integers(0, 3)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(steps=steps, capacity=st.integers(1, 4))
def test_every_watch_passes_the_robustness_checks(
    steps: list[tuple[str, object]], capacity: int
) -> None:
    store = Store()
    history: list[Event] = []

    def record(revision: int, changes: list[Change]) -> None:
        history.extend(event_of(stored, entry) for stored, entry in changes)

    store.observe(record)  # type: ignore[arg-type]
    hub = WatchHub(store, stream_capacity=capacity)
    stream = hub.open_stream()
    watches: dict[int, ObservedWatch] = {}
    replies = []

    def read(count: int | None) -> None:
        replies.extend(stream.take(count))

    for kind, argument in steps:
        if kind == "put":
            with store.write() as txn:
                for key in dict.fromkeys(argument):  # type: ignore[call-overload]
                    txn.put(key, b"v%d" % store.current_revision)
        elif kind == "delete":
            store.delete_range(argument)  # type: ignore[arg-type]
        elif kind == "watch":
            assert isinstance(argument, WatchRequest)
            watch_id = stream.create(argument)
            watches[watch_id] = ObservedWatch(argument)
        elif kind == "read":
            read(argument)  # type: ignore[arg-type]
        elif kind == "catch_up":
            hub.catch_up()
        elif kind == "compact" and store.current_revision - 1 > store.compact_revision:
            target = max(store.compact_revision + 1, store.current_revision - argument)  # type: ignore[operator]
            store.compact(target)
    for _ in range(1000):  # the reader catches up at last
        read(None)
        if not hub.behind:
            break
        hub.catch_up()
    for reply in replies:
        if reply.watch_id in watches:
            watches[reply.watch_id].replies.append(reply)
    for watch_id, watch in watches.items():
        problems = check_watch(watch, history, compacted=store.compact_revision)
        assert not problems, (watch_id, watch.request, problems)
        cancelled = any(r.compact_revision for r in watch.replies)
        if not cancelled:  # reliable to the end: everything from its start was delivered
            created = watch.replies[0]
            start = watch.request.start_revision or created.revision + 1
            expected = [
                e
                for e in history
                if e.revision >= start
                and watch.request.matches(e.kv.key)
                and watch.request.wants(e)
            ]
            got = watch.events()
            assert [(e.revision, e.kv.key) for e in got] == [
                (e.revision, e.kv.key) for e in expected
            ]
