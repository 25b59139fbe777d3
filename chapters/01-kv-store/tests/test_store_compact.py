"""Compaction: what it drops, what stays readable, and its errors.

etcd's rules (ETCD-FACTS "Range" and "Compact", ``mvcc/kvstore.go``): compaction at ``C`` drops
every change no read at ``C`` or later can see. A read below ``C`` fails with "mvcc: required
revision has been compacted"; a read exactly at ``C`` is allowed. Compacting at or below the
current compaction revision is the compacted error; above the current revision, the future one.
"""

from __future__ import annotations

import itertools

import pytest

from kv.mvcc import CompactedError, FutureRevisionError, KeyValue, RangeResult, Revision, Store

STARTS = (b"\x00", b"a", b"b", b"c")
ENDS = (b"", b"\x00", b"b", b"c", b"d")


def every_read(store: Store, revision: int) -> list[RangeResult]:
    return [
        store.range(key, end, revision=revision) for key, end in itertools.product(STARTS, ENDS)
    ]


def busy_store() -> Store:
    """a: put 2, 3, deleted 5, put 7; b: put 4, 6; c: put 8."""
    store = Store()
    store.put(b"a", b"a1")  # 2
    store.put(b"a", b"a2")  # 3
    store.put(b"b", b"b1")  # 4
    store.delete_range(b"a")  # 5
    store.put(b"b", b"b2")  # 6
    store.put(b"a", b"a3")  # 7
    store.put(b"c", b"c1")  # 8
    return store


def keys_in_history(store: Store) -> set[bytes]:
    return {entry.kv.key for entry in store.history.values()}


# --- errors ----------------------------------------------------------------------------------


def test_a_read_below_the_compaction_revision_raises_with_etcds_message() -> None:
    """etcd: ErrCompacted, "mvcc: required revision has been compacted"."""
    store = busy_store()
    store.compact(5)
    with pytest.raises(CompactedError) as raised:
        store.range(b"a", revision=4)
    assert str(raised.value) == "mvcc: required revision has been compacted"
    assert raised.value.message == "mvcc: required revision has been compacted"


def test_every_revision_below_the_compaction_revision_is_refused() -> None:
    store = busy_store()
    store.compact(5)
    for revision in range(1, 5):
        with pytest.raises(CompactedError):
            store.range(b"\x00", b"\x00", revision=revision)


def test_compacting_records_the_compaction_revision() -> None:
    store = busy_store()
    store.compact(5)
    assert store.compact_revision == 5


def test_compacting_twice_at_the_same_revision_fails() -> None:
    store = busy_store()
    store.compact(5)
    with pytest.raises(CompactedError):
        store.compact(5)


def test_compacting_below_the_compaction_revision_fails() -> None:
    store = busy_store()
    store.compact(5)
    with pytest.raises(CompactedError):
        store.compact(3)


def test_compacting_in_the_future_fails_with_the_future_error() -> None:
    store = busy_store()
    with pytest.raises(FutureRevisionError) as raised:
        store.compact(store.current_revision + 1)
    assert str(raised.value) == "mvcc: required revision is a future revision"


def test_compacting_at_or_below_the_compaction_revision_is_checked_before_the_future() -> None:
    """etcd's updateCompactRev checks `rev <= compactMainRev` first."""
    store = busy_store()
    store.compact(store.current_revision)
    with pytest.raises(CompactedError):
        store.compact(store.current_revision)


def test_a_failed_compaction_changes_nothing() -> None:
    store = busy_store()
    store.compact(4)
    history, compact_revision = dict(store.history), store.compact_revision
    for bad in (4, 2, store.current_revision + 1):
        with pytest.raises((CompactedError, FutureRevisionError)):
            store.compact(bad)
    assert (store.history, store.compact_revision) == (history, compact_revision)


def test_compacting_at_the_current_revision_is_allowed() -> None:
    store = busy_store()
    store.compact(store.current_revision)
    assert store.compact_revision == store.current_revision == 8


def test_compaction_does_not_change_the_current_revision() -> None:
    store = busy_store()
    store.compact(6)
    assert store.current_revision == 8


def test_a_later_compaction_moves_the_compaction_revision_forward() -> None:
    store = busy_store()
    store.compact(3)
    store.compact(6)
    assert store.compact_revision == 6
    with pytest.raises(CompactedError):
        store.range(b"b", revision=5)


# --- what stays readable ---------------------------------------------------------------------


def test_a_read_exactly_at_the_compaction_revision_works() -> None:
    """ETCD-FACTS: revision < compaction revision is refused; exactly the compaction rev is not."""
    store = busy_store()
    store.compact(4)
    assert [kv.key for kv in store.range(b"\x00", b"\x00", revision=4).kvs] == [b"a", b"b"]


@pytest.mark.parametrize("at", range(1, 9))
def test_reads_at_and_after_the_compaction_revision_are_what_they_were_before(at: int) -> None:
    store = busy_store()
    before = [every_read(store, revision) for revision in range(at, 9)]
    store.compact(at)
    assert [every_read(store, revision) for revision in range(at, 9)] == before


def test_a_value_kept_by_compaction_keeps_its_create_revision_and_version() -> None:
    store = busy_store()
    store.compact(7)
    assert store.range(b"b").kvs == [
        KeyValue(b"b", b"b2", create_revision=4, mod_revision=6, version=2)
    ]


def test_a_put_after_compaction_continues_the_keys_version() -> None:
    store = busy_store()
    store.compact(8)
    store.put(b"b", b"b3")
    assert store.range(b"b").kvs == [
        KeyValue(b"b", b"b3", create_revision=4, mod_revision=9, version=3)
    ]


def test_writes_after_compaction_are_readable_at_their_revisions() -> None:
    store = busy_store()
    store.compact(8)
    store.delete_range(b"b")  # 9
    store.put(b"d", b"d1")  # 10
    assert [kv.key for kv in store.range(b"\x00", b"\x00", revision=9).kvs] == [b"a", b"c"]
    assert [kv.key for kv in store.range(b"\x00", b"\x00", revision=8).kvs] == [b"a", b"b", b"c"]


# --- what is dropped -------------------------------------------------------------------------


def test_compaction_keeps_only_the_live_revision_of_each_key_at_or_below_it() -> None:
    store = busy_store()
    store.compact(6)
    # a's first life ended at 5: gone, tombstone included. b keeps 6; everything after 6 stays.
    assert list(store.history) == [Revision(6), Revision(7), Revision(8)]


def test_compaction_keeps_an_older_revision_that_is_still_live() -> None:
    store = busy_store()
    store.compact(5)
    # b's 4 is still live at 5; a's tombstone at 5 stays too (etcd #18089).
    assert list(store.history) == [Revision(r) for r in (4, 5, 6, 7, 8)]


def test_a_key_deleted_before_the_compaction_revision_disappears_from_history() -> None:
    store = Store()
    store.put(b"gone", b"1")  # 2
    store.delete_range(b"gone")  # 3
    store.put(b"x", b"1")  # 4
    store.compact(4)
    assert b"gone" not in keys_in_history(store)
    assert len(store.index) == 1


def test_a_key_deleted_exactly_at_the_compaction_revision_keeps_only_its_tombstone() -> None:
    """etcd PR #18274 (#18089): a watch from the compaction revision must see that delete.
    (etcd 3.4.23 dropped the tombstone too.)"""
    store = Store()
    store.put(b"gone", b"1")  # 2
    store.delete_range(b"gone")  # 3
    store.compact(3)
    assert [(r, e.tombstone) for r, e in store.history.items()] == [(Revision(3), True)]
    assert store.range(b"gone", revision=3).kvs == []


def test_the_next_compaction_drops_a_tombstone_kept_at_the_last_one() -> None:
    store = Store()
    store.put(b"gone", b"1")  # 2
    store.delete_range(b"gone")  # 3
    store.compact(3)
    store.put(b"x", b"1")  # 4
    store.compact(4)
    assert b"gone" not in keys_in_history(store)
    assert len(store.index) == 1


def test_a_txn_deleting_and_re_creating_a_key_at_the_compaction_revision_keeps_both() -> None:
    """The tombstone stays for watches, the new value for reads (etcd PR #22377)."""
    store = Store()
    store.put(b"k", b"old")  # 2
    with store.write() as txn:  # 3
        txn.delete_range(b"k")
        txn.put(b"k", b"new")
    store.compact(3)
    assert [(r, e.tombstone) for r, e in store.history.items()] == [
        (Revision(3, 0), True),
        (Revision(3, 1), False),
    ]
    assert store.range(b"k", revision=3).kvs == [KeyValue(b"k", b"new", 3, 3, 1)]


def test_a_key_deleted_after_the_compaction_revision_keeps_its_value_and_tombstone() -> None:
    store = Store()
    store.put(b"k", b"1")  # 2
    store.put(b"k", b"2")  # 3
    store.delete_range(b"k")  # 4
    store.compact(3)
    assert [(r, e.tombstone) for r, e in store.history.items()] == [
        (Revision(3), False),
        (Revision(4), True),
    ]
    assert store.range(b"k", revision=3).kvs == [KeyValue(b"k", b"2", 2, 3, 2)]


def test_a_re_created_key_loses_only_its_ended_life() -> None:
    store = Store()
    store.put(b"k", b"old")  # 2
    store.delete_range(b"k")  # 3
    store.put(b"k", b"new")  # 4
    store.compact(4)
    assert [e.kv.value for e in store.history.values()] == [b"new"]
    assert store.range(b"k", revision=4).kvs == [KeyValue(b"k", b"new", 4, 4, 1)]


def test_compaction_shrinks_history() -> None:
    store = Store()
    for value in range(10):
        store.put(b"k", str(value).encode())
    assert len(store.history) == 10
    store.compact(store.current_revision)
    assert len(store.history) == 1


def test_compaction_at_a_revision_where_nothing_is_superseded_drops_nothing() -> None:
    store = Store()
    for key in (b"a", b"b", b"c"):
        store.put(key, b"v")
    store.compact(store.current_revision)
    assert len(store.history) == 3
