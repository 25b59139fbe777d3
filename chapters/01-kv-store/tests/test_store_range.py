"""Range reads: which keys a range covers, limit and count, and reads at a past revision.

etcd's rules (ETCD-FACTS "Range"): range_end empty = one key; prefix+1 = the prefix; ``\\x00``
= every key >= key; key and range_end both ``\\x00`` = every key; range_end <= key = nothing.
``count`` counts the whole range, ignoring limit. The header revision is the current revision,
even for a historic read.
"""

from __future__ import annotations

import pytest

from kv.mvcc import FutureRevisionError, KeyValue, Store

KEYS = (b"a", b"ab", b"abc", b"b", b"b\x00", b"c")


def store_with(*keys: bytes) -> Store:
    store = Store()
    for key in keys:
        store.put(key, b"v:" + key)
    return store


def keys_in(
    store: Store, key: bytes, range_end: bytes = b"", *, revision: int = 0, limit: int = 0
) -> list[bytes]:
    return [kv.key for kv in store.range(key, range_end, revision=revision, limit=limit).kvs]


# --- which keys a range covers ---------------------------------------------------------------


def test_an_empty_range_end_reads_the_one_key() -> None:
    store = store_with(*KEYS)
    assert store.range(b"ab").kvs == [KeyValue(b"ab", b"v:ab", 3, 3, 1)]


def test_reading_a_missing_key_returns_nothing_and_count_0() -> None:
    result = store_with(*KEYS).range(b"aa")
    assert (result.kvs, result.count) == ([], 0)


def test_a_single_key_read_does_not_match_longer_keys() -> None:
    assert keys_in(store_with(*KEYS), b"a") == [b"a"]


def test_a_range_is_half_open() -> None:
    assert keys_in(store_with(*KEYS), b"ab", b"b") == [b"ab", b"abc"]


def test_prefix_plus_one_as_range_end_reads_the_prefix() -> None:
    """etcdctl get --prefix a sends range_end = b"b" (last byte + 1)."""
    assert keys_in(store_with(*KEYS), b"a", b"b") == [b"a", b"ab", b"abc"]


def test_range_end_x00_reads_every_key_from_key_on() -> None:
    """etcd: range_end "\\x00" means every key >= key (etcdctl get --from-key)."""
    assert keys_in(store_with(*KEYS), b"b", b"\x00") == [b"b", b"b\x00", b"c"]


def test_key_and_range_end_both_x00_read_every_key() -> None:
    assert keys_in(store_with(*KEYS), b"\x00", b"\x00") == list(KEYS)


def test_range_end_below_key_reads_nothing() -> None:
    result = store_with(*KEYS).range(b"c", b"a")
    assert (result.kvs, result.count) == ([], 0)


def test_range_end_equal_to_key_reads_nothing() -> None:
    assert keys_in(store_with(*KEYS), b"b", b"b") == []


def test_results_come_in_byte_order_of_keys() -> None:
    store = store_with(b"c", b"b\x00", b"abc", b"b", b"ab", b"a")
    assert keys_in(store, b"\x00", b"\x00") == [b"a", b"ab", b"abc", b"b", b"b\x00", b"c"]


def test_a_range_skips_deleted_keys() -> None:
    store = store_with(*KEYS)
    store.delete_range(b"ab")
    assert keys_in(store, b"a", b"b") == [b"a", b"abc"]
    assert store.range(b"a", b"b").count == 2


def test_a_range_returns_create_mod_revision_and_version() -> None:
    store = store_with(b"a", b"b")
    store.put(b"a", b"new")
    assert store.range(b"a", b"c").kvs == [
        KeyValue(b"a", b"new", create_revision=2, mod_revision=4, version=2),
        KeyValue(b"b", b"v:b", create_revision=3, mod_revision=3, version=1),
    ]


# --- limit and count -------------------------------------------------------------------------


def test_limit_cuts_the_kvs_but_count_counts_the_whole_range() -> None:
    result = store_with(*KEYS).range(b"a", b"\x00", limit=2)
    assert [kv.key for kv in result.kvs] == [b"a", b"ab"]
    assert result.count == len(KEYS)


@pytest.mark.parametrize("limit", [0, -1, -100])
def test_a_limit_of_zero_or_less_means_no_limit(limit: int) -> None:
    assert keys_in(store_with(*KEYS), b"\x00", b"\x00", limit=limit) == list(KEYS)


def test_a_limit_above_the_range_size_returns_everything() -> None:
    assert keys_in(store_with(*KEYS), b"\x00", b"\x00", limit=100) == list(KEYS)


def test_count_only_returns_the_count_and_no_kvs() -> None:
    result = store_with(*KEYS).range(b"a", b"b", count_only=True)
    assert (result.kvs, result.count) == ([], 3)


def test_count_only_ignores_the_limit() -> None:
    result = store_with(*KEYS).range(b"\x00", b"\x00", count_only=True, limit=1)
    assert (result.kvs, result.count) == ([], len(KEYS))


# --- reads at a revision ---------------------------------------------------------------------


def test_a_historic_read_returns_the_value_at_that_revision() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.put(b"a", b"2")
    assert store.range(b"a", revision=2).kvs == [KeyValue(b"a", b"1", 2, 2, 1)]


def test_a_historic_read_before_the_key_existed_finds_nothing() -> None:
    store = Store()
    store.put(b"x", b"1")
    store.put(b"a", b"1")
    assert store.range(b"a", revision=2).kvs == []


def test_a_historic_read_sees_a_key_deleted_later() -> None:
    store = Store()
    store.put(b"a", b"1")
    store.delete_range(b"a")
    assert store.range(b"a", revision=2).kvs == [KeyValue(b"a", b"1", 2, 2, 1)]


def test_a_historic_read_of_a_range_sees_the_keys_of_that_time() -> None:
    store = store_with(b"a", b"b")  # revisions 2, 3
    store.delete_range(b"a")  # 4
    store.put(b"c", b"1")  # 5
    store.put(b"a", b"again")  # 6
    assert [(kv.key, kv.create_revision) for kv in store.range(b"a", b"\x00", revision=3).kvs] == [
        (b"a", 2),
        (b"b", 3),
    ]
    assert [kv.key for kv in store.range(b"a", b"\x00", revision=5).kvs] == [b"b", b"c"]
    assert [(kv.key, kv.create_revision) for kv in store.range(b"a", b"\x00").kvs] == [
        (b"a", 6),
        (b"b", 3),
        (b"c", 5),
    ]


def test_a_read_at_revision_1_of_a_store_with_writes_finds_nothing() -> None:
    assert store_with(*KEYS).range(b"\x00", b"\x00", revision=1).kvs == []


def test_the_header_revision_is_the_current_revision_even_for_a_historic_read() -> None:
    """ETCD-FACTS: the header revision of a Range is the current revision."""
    store = store_with(*KEYS)
    assert store.range(b"a", revision=2).revision == store.current_revision == 7


def test_the_header_revision_is_current_for_count_only() -> None:
    store = store_with(*KEYS)
    assert store.range(b"a", revision=2, count_only=True).revision == 7


@pytest.mark.parametrize("revision", [0, -1])
def test_a_revision_of_zero_or_less_reads_the_current_revision(revision: int) -> None:
    store = Store()
    store.put(b"a", b"1")
    store.put(b"a", b"2")
    assert store.range(b"a", revision=revision).kvs[0].value == b"2"


def test_reading_at_the_current_revision_is_allowed() -> None:
    store = store_with(b"a")
    assert keys_in(store, b"a", revision=2) == [b"a"]


@pytest.mark.parametrize("ahead", [1, 100])
def test_a_future_revision_raises_with_etcds_message(ahead: int) -> None:
    """etcd: ErrFutureRev, "mvcc: required revision is a future revision"."""
    store = store_with(b"a")
    with pytest.raises(FutureRevisionError) as raised:
        store.range(b"a", revision=store.current_revision + ahead)
    assert str(raised.value) == "mvcc: required revision is a future revision"
    assert raised.value.message == "mvcc: required revision is a future revision"


def test_a_read_of_an_empty_range_at_a_future_revision_still_raises() -> None:
    with pytest.raises(FutureRevisionError):
        Store().range(b"c", b"a", revision=2)
