"""Writes: revisions per request, sub revisions, versions, create revisions, tombstones.

etcd's rules (``mvcc/kvstore_txn.go``, ETCD-FACTS "Revisions"): a fresh store is at revision 1;
every write request that changes something adds exactly 1, however many keys it touches; a
request that changes nothing keeps the revision.
"""

from __future__ import annotations

import pytest

from kv.mvcc import FutureRevisionError, HistoryEntry, KeyValue, Revision, Store


def only(store: Store, key: bytes, revision: int = 0) -> KeyValue:
    """The one key-value ``key`` has at ``revision``; fails if it does not exist."""
    kvs = store.range(key, revision=revision).kvs
    assert len(kvs) == 1, f"expected {key!r} to exist, got {kvs}"
    return kvs[0]


def keys_now(store: Store) -> list[bytes]:
    return [kv.key for kv in store.range(b"\x00", b"\x00").kvs]


# --- one request, one revision ---------------------------------------------------------------


def test_a_fresh_store_is_at_revision_1() -> None:
    assert Store().current_revision == 1


def test_a_fresh_store_has_not_been_compacted() -> None:
    assert Store().compact_revision == -1


def test_a_put_adds_exactly_one_revision() -> None:
    store = Store()
    store.put(b"a", b"1")
    assert store.current_revision == 2


def test_put_returns_the_new_revision() -> None:
    store = Store()
    assert [store.put(b"a", b"1"), store.put(b"b", b"1")] == [2, 3]


def test_putting_the_same_value_again_bumps_revision_and_version() -> None:
    """ETCD-FACTS: putting the same value again bumps the revision and the key's version."""
    store = Store()
    store.put(b"a", b"1")
    store.put(b"a", b"1")
    assert store.current_revision == 3
    assert only(store, b"a").version == 2


def test_a_delete_that_deletes_something_adds_exactly_one_revision() -> None:
    store = Store()
    store.put(b"a", b"1")
    assert store.delete_range(b"a") == (1, 3)
    assert store.current_revision == 3


def test_a_delete_of_nothing_keeps_the_revision() -> None:
    """etcd: a DeleteRange that matches no key is not a change; the revision stays."""
    store = Store()
    store.put(b"a", b"1")
    assert store.delete_range(b"zzz") == (0, 2)
    assert store.current_revision == 2


def test_a_delete_of_a_deleted_key_keeps_the_revision() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.delete_range(b"a")
    assert store.delete_range(b"a") == (0, 3)


def test_a_delete_of_nothing_writes_no_history() -> None:
    store = Store()
    store.delete_range(b"a", b"\x00")
    assert store.history == {}


def test_deleting_a_range_uses_one_revision_for_all_its_keys() -> None:
    store = Store()
    for key in (b"a", b"b", b"c"):
        store.put(key, b"v")
    assert store.delete_range(b"a", b"c") == (2, 5)
    assert keys_now(store) == [b"c"]


# --- versions and create revisions -----------------------------------------------------------


def test_first_put_has_version_1_and_create_revision_equal_to_mod_revision() -> None:
    store = Store()
    store.put(b"a", b"1")
    assert only(store, b"a") == KeyValue(b"a", b"1", create_revision=2, mod_revision=2, version=1)


def test_an_update_keeps_create_revision_and_increments_version() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.put(b"b", b"1")
    store.put(b"a", b"2")
    assert only(store, b"a") == KeyValue(b"a", b"2", create_revision=2, mod_revision=4, version=2)


def test_writes_to_other_keys_do_not_change_a_keys_version() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.put(b"b", b"1")
    store.put(b"b", b"2")
    assert only(store, b"a").version == 1


def test_delete_then_put_starts_a_new_generation_with_version_1() -> None:
    """etcd: delete ends the generation; re-create gets a new create_revision and version 1."""
    store = Store()
    store.put(b"a", b"1")
    store.put(b"a", b"2")
    store.delete_range(b"a")
    store.put(b"a", b"3")
    assert only(store, b"a") == KeyValue(b"a", b"3", create_revision=5, mod_revision=5, version=1)


def test_the_old_generation_stays_readable_after_re_creation() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.put(b"a", b"2")
    store.delete_range(b"a")
    store.put(b"a", b"3")
    assert only(store, b"a", revision=3) == KeyValue(b"a", b"2", 2, 3, 2)


def test_a_deleted_key_is_gone_from_current_reads() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.delete_range(b"a")
    assert store.range(b"a").kvs == []


def test_a_put_stores_its_lease() -> None:
    store = Store()
    store.put(b"a", b"1", lease=7)
    assert only(store, b"a").lease == 7


def test_a_put_without_a_lease_detaches_the_keys_lease() -> None:
    """ETCD-FACTS: a plain put detaches the key's lease."""
    store = Store()
    store.put(b"a", b"1", lease=7)
    store.put(b"a", b"2")
    assert only(store, b"a").lease == 0


# --- what history stores ---------------------------------------------------------------------


def test_a_put_is_stored_under_its_revision() -> None:
    store = Store()
    store.put(b"a", b"1")
    assert store.history == {
        Revision(2, 0): HistoryEntry(KeyValue(b"a", b"1", 2, 2, 1), tombstone=False)
    }


def test_a_delete_stores_a_tombstone_with_only_the_key() -> None:
    """etcd stores a tombstone as mvccpb.KeyValue{Key: key} under a t-marked revision."""
    store = Store()
    store.put(b"a", b"1")
    store.delete_range(b"a")
    assert store.history[Revision(3, 0)] == HistoryEntry(KeyValue(b"a", b"", 0, 0, 0), True)


def test_a_range_delete_stores_one_tombstone_per_key_in_key_order() -> None:
    store = Store()
    store.put(b"b", b"v")
    store.put(b"a", b"v")
    store.delete_range(b"a", b"\x00")
    tombstones = {r: e.kv.key for r, e in store.history.items() if e.tombstone}
    assert tombstones == {Revision(4, 0): b"a", Revision(4, 1): b"b"}


# --- write requests with several operations --------------------------------------------------


def test_all_operations_of_a_write_share_one_main_revision() -> None:
    store = Store()
    with store.write() as txn:
        txn.put(b"a", b"1")
        txn.put(b"b", b"1")
        txn.put(b"c", b"1")
    assert store.current_revision == 2
    assert {kv.mod_revision for kv in store.range(b"a", b"d").kvs} == {2}


def test_sub_revisions_number_the_operations_of_a_write_in_order() -> None:
    """etcd: rev.sub = len(tw.changes), so 0, 1, 2... across puts and tombstones."""
    store = Store()
    store.put(b"x", b"0")
    with store.write() as txn:
        txn.put(b"a", b"1")
        txn.delete_range(b"x")
        txn.put(b"b", b"1")
    assert [
        (revision, entry.kv.key, entry.tombstone)
        for revision, entry in store.history.items()
        if revision.main == 3
    ] == [
        (Revision(3, 0), b"a", False),
        (Revision(3, 1), b"x", True),
        (Revision(3, 2), b"b", False),
    ]


def test_the_store_moves_to_the_new_revision_when_the_write_ends() -> None:
    store = Store()
    with store.write() as txn:
        txn.put(b"a", b"1")
        assert store.current_revision == 1
    assert store.current_revision == 2


def test_a_write_reports_its_revision_once_it_changed_something() -> None:
    store = Store()
    with store.write() as txn:
        assert txn.revision == 1
        txn.put(b"a", b"1")
        assert txn.revision == 2
    assert txn.revision == 2


def test_an_empty_write_keeps_the_revision() -> None:
    store = Store()
    with store.write() as txn:
        pass
    assert (txn.revision, store.current_revision) == (1, 1)


def test_a_write_whose_only_delete_matches_nothing_keeps_the_revision() -> None:
    store = Store()
    store.put(b"a", b"1")
    with store.write() as txn:
        assert txn.delete_range(b"zzz") == 0
    assert (txn.revision, store.current_revision) == (2, 2)


def test_a_write_with_a_put_and_a_delete_of_nothing_adds_one_revision() -> None:
    store = Store()
    with store.write() as txn:
        txn.delete_range(b"zzz")
        txn.put(b"a", b"1")
    assert store.current_revision == 2
    assert list(store.history) == [Revision(2, 0)]


def test_two_puts_of_one_key_in_one_write_are_two_versions() -> None:
    """etcd's store counts each put (the API layer forbids duplicate keys in a txn)."""
    store = Store()
    with store.write() as txn:
        txn.put(b"a", b"1")
        txn.put(b"a", b"2")
    assert only(store, b"a") == KeyValue(b"a", b"2", create_revision=2, mod_revision=2, version=2)


def test_delete_then_put_in_one_write_starts_a_new_generation() -> None:
    store = Store()
    store.put(b"a", b"1")
    with store.write() as txn:
        txn.delete_range(b"a")
        txn.put(b"a", b"2")
    assert only(store, b"a") == KeyValue(b"a", b"2", create_revision=3, mod_revision=3, version=1)


def test_a_write_reads_its_own_puts() -> None:
    store = Store()
    store.put(b"a", b"1")
    with store.write() as txn:
        txn.put(b"a", b"2")
        txn.put(b"b", b"1")
        seen = txn.range(b"a", b"c")
    assert [(kv.key, kv.value, kv.mod_revision) for kv in seen.kvs] == [
        (b"a", b"2", 3),
        (b"b", b"1", 3),
    ]
    assert seen.revision == 3


def test_a_write_reads_its_own_deletes() -> None:
    store = Store()
    store.put(b"a", b"1")
    with store.write() as txn:
        txn.delete_range(b"a")
        assert txn.range(b"a").kvs == []


def test_a_delete_in_a_write_sees_the_writes_own_puts() -> None:
    store = Store()
    with store.write() as txn:
        txn.put(b"a", b"1")
        assert txn.delete_range(b"a") == 1
    assert store.range(b"a").kvs == []
    assert store.current_revision == 2


def test_a_plain_read_during_a_write_does_not_see_it() -> None:
    """Readers see whole requests: the write's changes appear when it ends."""
    store = Store()
    store.put(b"a", b"1")
    with store.write() as txn:
        txn.put(b"a", b"2")
        txn.put(b"b", b"1")
        txn.delete_range(b"a")
        seen = store.range(b"\x00", b"\x00")
        assert [(kv.key, kv.value) for kv in seen.kvs] == [(b"a", b"1")]
        assert seen.revision == 2


def test_reading_the_writes_revision_from_outside_during_the_write_is_a_future_read() -> None:
    store = Store()
    with store.write() as txn:
        txn.put(b"a", b"1")
        with pytest.raises(FutureRevisionError):
            store.range(b"a", revision=2)
