"""The store against a model too simple to be wrong: one full snapshot per revision.

Hypothesis generates random sequences of requests -- puts, single-key deletes, range deletes,
multi-operation write requests, compactions at a random allowed revision -- and applies them to
the `Store` and to the model, a list of dicts ``{key: (value, create_revision, mod_revision,
version)}``, one per revision. Then EVERY range of a fixed set, at EVERY revision from the
compaction revision to the current one, must read exactly what the model's snapshot holds;
revisions below the compaction revision must raise `CompactedError`, revisions above the current
one `FutureRevisionError`; and a compaction must not change any read it still permits. The key
alphabet is tiny so that keys collide, are deleted and re-created, and fall on range edges
(``b"b\\x00"`` sorts right after ``b"b"``, ``b"ab"`` between ``b"a"`` and ``b"b"``).

A second property rebuilds the store from its history, as a restart does (chapter 2), goes on
with more requests, and checks every read again. A third checks the index's cheap count of the
newest revision (`TreeIndex.count`, kept in step with every put, delete and compaction)
against a walk of each range, after every request and in an index rebuilt from the history.

Replaying a failure: Hypothesis prints the shrunk falsifying example (a complete list of
requests) and a ``@reproduce_failure(...)`` line to paste above the test; it also saves the
example in ``.hypothesis/`` and tries it first on the next run. To replay a whole run, use
the seed our conftest adds to the failure report: ``pytest --hypothesis-seed=N``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kv.mvcc import CompactedError, FutureRevisionError, KeyValue, RangeResult, Store

KEYS = (b"a", b"ab", b"b", b"b\x00", b"c", b"d", b"e")
VALUES = (b"", b"x", b"yy")
DELETE_STARTS = (b"\x00", *KEYS)
DELETE_ENDS = (b"\x00", *KEYS, b"f")
READ_STARTS = (b"\x00", b"a", b"aa", b"ab", b"b", b"b\x00", b"c", b"e", b"f")
READ_ENDS = (b"", b"\x00", b"a", b"ab", b"b", b"b\x00", b"b\x01", b"c", b"e", b"f")
READS = tuple(itertools.product(READ_STARTS, READ_ENDS))

Row = tuple[bytes, bytes, int, int, int]  # key, value, create_revision, mod_revision, version
Snapshot = dict[bytes, tuple[bytes, int, int, int]]  # key -> value, create, mod, version


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Put:
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Delete:
    key: bytes
    range_end: bytes  # b"": the one key


@dataclass(frozen=True)
class Write:
    """One write request with several operations: they share one main revision."""

    operations: tuple[Put | Delete, ...]


@dataclass(frozen=True)
class Compact:
    pick: int  # chooses the compaction revision among the allowed ones


Request = Put | Delete | Write | Compact

puts = st.builds(Put, st.sampled_from(KEYS), st.sampled_from(VALUES))
key_deletes = st.builds(Delete, st.sampled_from(KEYS), st.just(b""))
range_deletes = st.builds(Delete, st.sampled_from(DELETE_STARTS), st.sampled_from(DELETE_ENDS))
changes = st.one_of(puts, puts, key_deletes, range_deletes)
writes = st.builds(Write, st.lists(changes, max_size=4).map(tuple))
compacts = st.builds(Compact, st.integers(min_value=0, max_value=2**16))
requests = st.one_of(puts, puts, puts, key_deletes, range_deletes, writes, writes, compacts)
# Hypothesis keeps plain lists short (about 5 on average); draw the length first instead, so that
# histories run to dozens of revisions and still shrink towards the empty one.
histories = st.integers(min_value=0, max_value=50).flatmap(
    lambda length: st.lists(requests, min_size=length, max_size=length)
)


histories_settings = settings(
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- the model -------------------------------------------------------------------------------


def in_range(candidate: bytes, key: bytes, range_end: bytes) -> bool:
    """etcd's range_end convention, spelled out."""
    if range_end == b"":
        return candidate == key
    if range_end == b"\x00":
        return candidate >= key
    return key <= candidate < range_end


def rows_of(snapshot: Snapshot, key: bytes = b"\x00", range_end: bytes = b"\x00") -> list[Row]:
    return [(k, *snapshot[k]) for k in sorted(snapshot) if in_range(k, key, range_end)]


def rows(kvs: list[KeyValue]) -> list[Row]:
    return [(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version) for kv in kvs]


class Model:
    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = [{}, {}]  # index = revision; a fresh store is at 1
        self.compacted = -1

    @property
    def current(self) -> int:
        return len(self.snapshots) - 1

    @staticmethod
    def apply(state: Snapshot, main: int, operation: Put | Delete) -> int:
        """Apply one operation at main revision ``main``; return how many keys it changed."""
        if isinstance(operation, Put):
            previous = state.get(operation.key)
            created, version = (main, 1) if previous is None else (previous[1], previous[3] + 1)
            state[operation.key] = (operation.value, created, main, version)
            return 1
        doomed = [k for k in state if in_range(k, operation.key, operation.range_end)]
        for k in doomed:
            del state[k]
        return len(doomed)


# --- driving store and model together --------------------------------------------------------


def write(store: Store, model: Model, operations: tuple[Put | Delete, ...]) -> None:
    before = model.snapshots[-1]
    state, main, changed = dict(before), model.current + 1, 0
    with store.write() as txn:
        for operation in operations:
            expected = Model.apply(state, main, operation)
            if isinstance(operation, Put):
                txn.put(operation.key, operation.value)
            else:
                assert txn.delete_range(operation.key, operation.range_end) == expected
            changed += expected
            # A write request reads its own writes; a plain read does not see them yet.
            assert rows(txn.range(b"\x00", b"\x00").kvs) == rows_of(state)
            assert rows(store.range(b"\x00", b"\x00").kvs) == rows_of(before)
            # Also when it only counts: the index already holds the request's changes.
            assert txn.range(b"\x00", b"\x00", count_only=True).count == len(state)
            assert store.range(b"\x00", b"\x00", count_only=True).count == len(before)
    if changed:
        model.snapshots.append(state)
    assert txn.revision == store.current_revision == model.current


def put(store: Store, model: Model, operation: Put) -> None:
    state = dict(model.snapshots[-1])
    Model.apply(state, model.current + 1, operation)
    model.snapshots.append(state)
    assert store.put(operation.key, operation.value) == model.current


def delete(store: Store, model: Model, operation: Delete) -> None:
    state = dict(model.snapshots[-1])
    deleted = Model.apply(state, model.current + 1, operation)
    if deleted:
        model.snapshots.append(state)
    assert store.delete_range(operation.key, operation.range_end) == (deleted, model.current)


def every_read(store: Store, revision: int) -> list[RangeResult]:
    return [store.range(key, end, revision=revision) for key, end in READS]


def compact(store: Store, model: Model, request: Compact) -> None:
    lowest = max(model.compacted + 1, 1)
    if lowest <= model.current:
        at = lowest + request.pick % (model.current - lowest + 1)
        permitted = range(at, model.current + 1)
        before = [every_read(store, revision) for revision in permitted]
        store.compact(at)
        model.compacted = at
        assert [every_read(store, revision) for revision in permitted] == before
    # Compacting again at (or below) the compaction revision, or in the future, is refused.
    with pytest.raises(CompactedError):
        store.compact(model.compacted)
    with pytest.raises(FutureRevisionError):
        store.compact(model.current + 1)
    assert store.compact_revision == model.compacted


def apply(store: Store, model: Model, request: Request) -> None:
    if isinstance(request, Put):
        put(store, model, request)
    elif isinstance(request, Delete):
        delete(store, model, request)
    elif isinstance(request, Write):
        write(store, model, request.operations)
    else:
        compact(store, model, request)


def check_every_read(store: Store, model: Model) -> None:
    current = model.current
    assert store.current_revision == current
    for revision in range(max(model.compacted, 1), current + 1):
        snapshot = model.snapshots[revision]
        for key, end in READS:
            expected = rows_of(snapshot, key, end)
            result = store.range(key, end, revision=revision)
            assert rows(result.kvs) == expected, (revision, key, end)
            assert (result.count, result.revision) == (len(expected), current)
        everything = rows_of(snapshot)
        limited = store.range(b"\x00", b"\x00", revision=revision, limit=2)
        assert (rows(limited.kvs), limited.count) == (everything[:2], len(everything))
        counted = store.range(b"\x00", b"\x00", revision=revision, count_only=True)
        assert (counted.kvs, counted.count) == ([], len(everything))
    for revision in range(1, model.compacted):
        with pytest.raises(CompactedError):
            store.range(b"\x00", b"\x00", revision=revision)
    for revision in (current + 1, current + 7):
        with pytest.raises(FutureRevisionError):
            store.range(b"\x00", b"\x00", revision=revision)


def check_compaction_dropped_the_unreachable(store: Store, model: Model) -> None:
    """At or below the compaction revision, history holds one entry per key live there, and
    the tombstones written at the compaction revision itself (etcd #18089)."""
    if model.compacted < 1:
        return
    old = [r for r in store.history if r.main <= model.compacted]
    puts = [r for r in old if not store.history[r].tombstone]
    assert len(puts) == len(model.snapshots[model.compacted])
    assert all(r.main == model.compacted for r in old if store.history[r].tombstone)


def check_newest_counts(store: Store) -> None:
    """At the newest revision the index counts a range without walking it (the keys of the
    range less those deleted now); the count must be what the walk finds."""
    at = store.current_revision
    assert store.index.newest <= at  # so `count` takes its fast path
    for key, end in READS:
        walked = len(store.index.range(key, end, at))
        assert store.index.count(key, end, at) == walked, (key, end)
        assert store.range(key, end, count_only=True).count == walked, (key, end)


def check_index_matches_history(store: Store) -> None:
    """Index and history hold the same changes: compaction trims both or neither."""
    indexed = set()
    for key in KEYS:
        key_index = store.index.key_index(key)
        if key_index is not None:
            indexed |= {r for generation in key_index.generations for r in generation.revisions}
    assert indexed == set(store.history)
    assert len(store.index) == len({entry.kv.key for entry in store.history.values()})


@histories_settings
@given(histories)
def test_every_read_at_every_revision_equals_the_model(history: list[Request]) -> None:
    store, model = Store(), Model()
    for request in history:
        apply(store, model, request)
    check_every_read(store, model)
    check_compaction_dropped_the_unreachable(store, model)
    check_index_matches_history(store)


@histories_settings
@given(histories, histories)
def test_a_store_rebuilt_from_its_history_reads_and_goes_on_as_the_model(
    before: list[Request], after: list[Request]
) -> None:
    # A restart's bulk rebuild (chapter 2) holds a key created by its one stored put as that
    # put's revision until first touched; reads, writes and compactions must not tell.
    store, model = Store(), Model()
    for request in before:
        apply(store, model, request)
    rebuilt = Store(dict(store.history), compact_revision=store.compact_revision)
    for request in after:
        apply(rebuilt, model, request)
    check_every_read(rebuilt, model)
    check_compaction_dropped_the_unreachable(rebuilt, model)
    check_index_matches_history(rebuilt)


@histories_settings
@given(histories)
def test_counting_the_newest_revision_equals_walking_the_range_after_every_request(
    history: list[Request],
) -> None:
    store, model = Store(), Model()
    for request in history:
        apply(store, model, request)
        check_newest_counts(store)
    # The same for the index rebuilt from the history in bulk, as a restart does (chapter 2).
    check_newest_counts(Store(dict(store.history), compact_revision=store.compact_revision))
