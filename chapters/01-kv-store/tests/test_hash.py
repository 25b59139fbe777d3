"""HashKV: etcd's CRC-32C of the stored history, used to compare the members of a cluster.

etcd (``mvcc/kvstore.go``, ``HashByRev``) hashes the bucket name ``key``, then every stored
backend key (revision bytes, ``t`` for a tombstone) and value (the protobuf ``mvccpb.KeyValue``)
with a main revision up to the one asked for. After a compaction at ``C``, a stored revision at
or below ``C`` is hashed only if it is in ``keep(R)`` (what a compaction at the hashed revision
``R`` would keep), unless ``keep(R)`` is empty. ``rev <= C`` is refused as compacted, ``rev``
above the current revision as a future revision.

Most tests encode a `KeyValue` with ``repr``: the real protobuf encoder belongs to the API layer.
The ``*_equals_etcd_3_4`` tests encode ``mvccpb.KeyValue`` by hand (a few lines of proto3 wire
format) and compare with hashes the real etcd 3.4.23 returned for the same requests
(``etcdctl -w json endpoint hashkv [--rev N]``; compactions with ``--physical``).
"""

from __future__ import annotations

import crc32c
import pytest

from kv.mvcc import CompactedError, FutureRevisionError, KeyValue, Store, hash_kv


def by_repr(kv: KeyValue) -> bytes:
    return repr(kv).encode()


def _varint(number: int) -> bytes:
    number &= (1 << 64) - 1  # int64 as protobuf encodes it
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        if not number:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def mvccpb_key_value(kv: KeyValue) -> bytes:
    """``mvccpb.KeyValue`` in proto3 wire format: fields 1..6 in order, defaults omitted."""
    out = b""
    if kv.key:
        out += b"\x0a" + _varint(len(kv.key)) + kv.key
    for field, number in ((2, kv.create_revision), (3, kv.mod_revision), (4, kv.version)):
        if number:
            out += _varint(field << 3) + _varint(number)
    if kv.value:
        out += b"\x2a" + _varint(len(kv.value)) + kv.value
    if kv.lease:
        out += b"\x30" + _varint(kv.lease)
    return out


def some_requests(store: Store) -> Store:
    store.put(b"a", b"1")
    store.put(b"b", b"1")
    store.put(b"a", b"2")
    store.delete_range(b"b")
    with store.write() as txn:
        txn.put(b"c", b"1")
        txn.put(b"d", b"1")
    return store


def digest(store: Store, revision: int = 0) -> int:
    return hash_kv(store, revision, by_repr).hash


# --- what the hash depends on ----------------------------------------------------------------


def test_the_hash_is_deterministic() -> None:
    store = some_requests(Store())
    assert digest(store) == digest(store)


def test_two_stores_given_the_same_requests_have_equal_hashes() -> None:
    assert digest(some_requests(Store())) == digest(some_requests(Store()))


def test_every_write_changes_the_hash() -> None:
    store = Store()
    seen = {digest(store)}
    store.put(b"a", b"1")
    seen.add(digest(store))
    store.put(b"a", b"1")  # the same value again is still a new revision
    seen.add(digest(store))
    store.delete_range(b"a")
    seen.add(digest(store))
    assert len(seen) == 4


def test_reads_and_deletes_of_nothing_do_not_change_the_hash() -> None:
    store = some_requests(Store())
    before = digest(store)
    store.range(b"\x00", b"\x00")
    store.delete_range(b"zzz")
    assert digest(store) == before


def test_the_hash_is_of_history_not_of_the_current_contents() -> None:
    once, twice = Store(), Store()
    once.put(b"a", b"2")
    twice.put(b"a", b"1")
    twice.put(b"a", b"2")
    assert digest(once) != digest(twice)


def test_the_hash_is_crc32c_of_the_bucket_name_then_each_revision_key_and_value() -> None:
    """etcd HashByRev: h.Write(keyBucketName), then h.Write(k), h.Write(v) in revision order."""
    store = Store()
    store.put(b"a", b"1")
    store.delete_range(b"a")
    expected = crc32c.crc32c(b"key")
    for data in (
        b"\x00" * 7 + b"\x02_" + b"\x00" * 8,
        by_repr(KeyValue(b"a", b"1", 2, 2, 1)),
        b"\x00" * 7 + b"\x03_" + b"\x00" * 8 + b"t",
        by_repr(KeyValue(b"a", b"", 0, 0, 0)),
    ):
        expected = crc32c.crc32c(data, value=expected)
    assert digest(store) == expected


# --- revisions -------------------------------------------------------------------------------


def test_the_hash_at_an_old_revision_equals_the_hash_the_store_had_then() -> None:
    store = Store()
    then = {store.current_revision: digest(store)}
    for key in (b"a", b"b", b"a", b"c"):
        store.put(key, b"v")
        then[store.current_revision] = digest(store)
    store.delete_range(b"a", b"c")
    then[store.current_revision] = digest(store)
    assert {revision: digest(store, revision) for revision in then} == then


def test_the_hash_at_revision_0_is_the_hash_at_the_current_revision() -> None:
    store = some_requests(Store())
    assert digest(store, 0) == digest(store, store.current_revision)


def test_the_hash_reports_the_current_revision_even_for_an_old_revision() -> None:
    store = some_requests(Store())
    assert hash_kv(store, 2, by_repr).revision == store.current_revision == 6


def test_the_hash_reports_compact_revision_minus_1_before_any_compaction() -> None:
    """ETCD-FACTS: HashKV's compact_revision is -1 before the first compaction."""
    assert hash_kv(some_requests(Store()), 0, by_repr).compact_revision == -1


def test_the_hash_reports_the_compaction_revision() -> None:
    store = some_requests(Store())
    store.compact(4)
    assert hash_kv(store, 0, by_repr).compact_revision == 4


def test_a_hash_at_a_future_revision_raises_the_future_error() -> None:
    store = some_requests(Store())
    with pytest.raises(
        FutureRevisionError, match=r"^mvcc: required revision is a future revision$"
    ):
        hash_kv(store, store.current_revision + 1, by_repr)


def test_a_hash_below_the_compaction_revision_raises_the_compacted_error() -> None:
    store = some_requests(Store())
    store.compact(4)
    with pytest.raises(CompactedError, match=r"^mvcc: required revision has been compacted$"):
        hash_kv(store, 3, by_repr)


def test_a_hash_exactly_at_the_compaction_revision_is_refused_unlike_a_range() -> None:
    """etcd HashByRev: `rev > 0 && rev <= compactRev` is ErrCompacted (a Range allows rev == C)."""
    store = some_requests(Store())
    store.compact(4)
    with pytest.raises(CompactedError):
        hash_kv(store, 4, by_repr)


def test_a_hash_at_revision_0_works_after_compacting_at_the_current_revision() -> None:
    store = some_requests(Store())
    store.compact(store.current_revision)
    assert hash_kv(store, 0, by_repr).revision == store.current_revision


# --- byte for byte etcd 3.4.23 ---------------------------------------------------------------


def etcd_hash(store: Store, revision: int = 0) -> int:
    return hash_kv(store, revision, mvccpb_key_value).hash


def scenario_without_compaction() -> Store:
    """put a 1 (2); txn{put b 1; put c 2} (3); del a c (4); put a "" (5); put c 3 (6)."""
    store = Store()
    store.put(b"a", b"1")
    with store.write() as txn:
        txn.put(b"b", b"1")
        txn.put(b"c", b"2")
    store.delete_range(b"a", b"c")
    store.put(b"a", b"")
    store.put(b"c", b"3")
    return store


def scenario_compacted_at_3() -> Store:
    """put a 1 (2); put b 1 (3); compaction --physical 3."""
    store = Store()
    store.put(b"a", b"1")
    store.put(b"b", b"1")
    store.compact(3)
    return store


def test_the_hash_of_a_fresh_store_equals_etcd_3_4() -> None:
    assert etcd_hash(Store()) == 1084519789


def test_the_hash_after_two_puts_equals_etcd_3_4() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.put(b"b", b"1")
    assert etcd_hash(store) == 2143169314


def test_the_hash_of_txns_tombstones_and_empty_values_equals_etcd_3_4() -> None:
    assert etcd_hash(scenario_without_compaction()) == 2619563696


@pytest.mark.parametrize(("revision", "expected"), [(3, 683323668), (4, 1310551169)])
def test_the_hash_at_an_old_revision_equals_etcd_3_4(revision: int, expected: int) -> None:
    assert etcd_hash(scenario_without_compaction(), revision) == expected


def test_compacting_at_the_current_revision_keeps_the_hash_of_etcd_3_4() -> None:
    assert hash_kv(scenario_compacted_at_3(), 0, mvccpb_key_value).hash == 2143169314


def test_the_hash_after_compaction_with_no_live_key_equals_etcd_3_4() -> None:
    """etcd skips nothing when keep(rev) is empty (`len(keep) > 0` in HashByRev)."""
    store = scenario_compacted_at_3()
    store.put(b"a", b"2")  # 4
    store.delete_range(b"b")  # 5
    store.delete_range(b"a")  # 6
    assert etcd_hash(store) == 2747211595


def test_the_hash_after_compaction_of_a_kept_value_still_live_equals_etcd_3_4() -> None:
    """c@3 was kept by the compaction at 4 and is still c's value at 5: etcd hashes it."""
    store = scenario_without_compaction()
    store.compact(4)
    assert etcd_hash(store, 5) == 267169066


def test_the_hash_after_compaction_skips_a_kept_value_a_later_put_replaced_like_etcd_3_4() -> None:
    """etcd HashByRev hashes a revision <= compactRev only if it is in Keep(rev)."""
    store = scenario_compacted_at_3()
    store.put(b"a", b"2")  # 4: a@2, kept by the compaction, is no longer live
    assert etcd_hash(store) == 2393049859


def test_the_hash_after_compaction_skips_a_kept_value_a_later_delete_ended_like_etcd_3_4() -> None:
    """A deleted key contributes nothing to Keep(rev), so its kept value is not hashed."""
    store = scenario_compacted_at_3()
    store.put(b"a", b"2")  # 4
    store.delete_range(b"b")  # 5: b@3, kept by the compaction, is deleted
    assert etcd_hash(store) == 194725478


def test_the_hash_at_an_old_revision_after_compaction_uses_keep_at_that_revision() -> None:
    """etcd computes Keep at the hashed revision, not at the compaction revision."""
    store = scenario_compacted_at_3()
    store.put(b"a", b"2")  # 4
    store.delete_range(b"b")  # 5
    assert etcd_hash(store, 4) == 2393049859


def test_the_hash_after_compaction_equals_etcd_3_4_once_a_kept_value_is_replaced() -> None:
    """c@3.1 was kept by the compaction at 4 and replaced by c@6: etcd no longer hashes it."""
    store = scenario_without_compaction()
    store.compact(4)
    assert etcd_hash(store) == 4033361491
