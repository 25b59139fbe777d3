"""A store rebuilt from its stored history answers exactly as the store that wrote it.

This is what restart rests on in chapter 2: the key index lives in memory only, and etcd
rebuilds it from the backend at start. Replay a failing case with the seed pytest prints.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kv.mvcc import CompactedError, Store

KEYS = [b"a", b"b", b"ab"]

put = st.tuples(st.just("put"), st.sampled_from(KEYS), st.binary(max_size=3))
delete = st.tuples(st.just("delete"), st.sampled_from(KEYS), st.sampled_from([b"", b"c", b"\x00"]))
# Compact at a share (in percent) of the way from the last compaction to the current revision.
compact = st.tuples(st.just("compact"), st.integers(min_value=1, max_value=100))
operations = st.lists(st.one_of(put, put, delete, compact), max_size=30)


def apply(store: Store, operation: tuple[str, bytes | int, bytes] | tuple[str, int]) -> None:
    kind = operation[0]
    if kind == "put":
        _, key, value = operation  # type: ignore[misc]
        store.put(key, value)
    elif kind == "delete":
        _, key, range_end = operation  # type: ignore[misc]
        store.delete_range(key, range_end)
    else:
        start = max(store.compact_revision, 0)
        revision = start + (store.current_revision - start) * int(operation[1]) // 100
        if revision > store.compact_revision:
            store.compact(revision)


def every_read(store: Store) -> list[object]:
    reads: list[object] = []
    for revision in range(1, store.current_revision + 1):
        try:
            reads.append(store.range(b"\x00", b"\x00", revision=revision))
        except CompactedError:
            reads.append("compacted")
    return reads


@settings(max_examples=1000, deadline=None)
@given(operations, operations)
def test_a_store_rebuilt_from_history_reads_and_writes_like_the_original(
    before: list[tuple[str, bytes | int, bytes]], after: list[tuple[str, bytes | int, bytes]]
) -> None:
    original = Store()
    for operation in before:
        apply(original, operation)
    rebuilt = Store(dict(original.history), compact_revision=original.compact_revision)
    assert rebuilt.current_revision == original.current_revision
    assert every_read(rebuilt) == every_read(original)
    # And it goes on the same way: versions and create revisions continue, not restart.
    for operation in after:
        apply(original, operation)
        apply(rebuilt, operation)
    assert every_read(rebuilt) == every_read(original)
    assert dict(rebuilt.history) == dict(original.history)


def test_a_rebuilt_store_continues_version_and_create_revision_of_a_compacted_key() -> None:
    original = Store()
    for value in (b"1", b"2", b"3"):
        original.put(b"a", value)  # revisions 2, 3, 4: versions 1, 2, 3
    original.compact(4)  # only revision 4 (version 3) is left of the key
    rebuilt = Store(dict(original.history), compact_revision=4)
    rebuilt.put(b"a", b"4")
    (kv,) = rebuilt.range(b"a").kvs
    assert (kv.version, kv.create_revision, kv.mod_revision) == (4, 2, 5)


def test_a_rebuilt_store_starts_at_the_compaction_revision_when_nothing_is_left() -> None:
    """A file from before kv kept the tombstone at the compaction revision (etcd #18089)."""
    rebuilt = Store({}, compact_revision=3)  # put a at 2, deleted at 3, compacted at 3
    assert (dict(rebuilt.history), rebuilt.current_revision) == ({}, 3)
    assert rebuilt.put(b"b", b"x") == 4


def rebuilt_with_a_lone_tombstone() -> Store:
    """Put a at 2, delete it at 3, compact at 3 (a's tombstone stays), and rebuild."""
    original = Store()
    original.put(b"a", b"1")
    original.delete_range(b"a")
    original.compact(3)
    return Store(dict(original.history), compact_revision=3)


def test_a_lone_tombstone_kept_at_the_compaction_revision_survives_a_restart() -> None:
    """etcd PR #19188: the tombstone is all that is left of the key, and it is restored."""
    rebuilt = rebuilt_with_a_lone_tombstone()
    assert rebuilt.current_revision == 3
    assert [(r.main, e.tombstone) for r, e in rebuilt.changes(3, since=3)] == [(3, True)]
    assert len(rebuilt.index) == 1
    assert rebuilt.range(b"a", revision=3).kvs == []


def test_the_next_compaction_drops_a_restored_lone_tombstone() -> None:
    rebuilt = rebuilt_with_a_lone_tombstone()
    rebuilt.put(b"b", b"1")  # 4
    rebuilt.compact(4)
    assert [entry.kv.key for entry in rebuilt.history.values()] == [b"b"]
    assert len(rebuilt.index) == 1


def test_a_rebuilt_store_does_not_go_back_when_its_newest_changes_were_compacted() -> None:
    original = Store()
    original.put(b"a", b"1")  # 2
    original.put(b"b", b"1")  # 3
    original.delete_range(b"b")  # 4: b's whole life ends at the compaction revision
    original.compact(4)
    rebuilt = Store(dict(original.history), compact_revision=4)
    assert rebuilt.current_revision == 4
    assert rebuilt.put(b"c", b"1") == 5  # not 3, a revision already handed out
