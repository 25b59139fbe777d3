"""The bbolt file format (`kv.bbolt`): what the writer writes, the reader reads back, page by page.

Files written by the real etcd, and the real etcdctl reading kv's files, are tested in
``tests/compat/test_bbolt_files.py``; here the format is checked against itself and against the
rules bbolt states (``page.go``, ``db.go``, ``bucket.go``).
"""

from __future__ import annotations

import io
from typing import TypeAlias

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kv.bbolt import PAGE_SIZE, BoltError, BoltFile, Bucket, NewBucket, write
from kv.bbolt.page import (
    FREELIST_OVERFLOW_COUNT,
    PAGE_HEADER,
    Meta,
    PageHeader,
    PageType,
    fnv1a_64,
    pack_freelist,
    unpack_freelist,
)

#: A bucket's content as plain data: key -> value, or key -> a nested bucket.
Tree: TypeAlias = dict[bytes, "bytes | Tree"]


def to_new_bucket(tree: Tree) -> NewBucket:
    return NewBucket(
        [(k, to_new_bucket(v) if isinstance(v, dict) else v) for k, v in sorted(tree.items())]
    )


def to_tree(bucket: Bucket) -> Tree:
    return {k: to_tree(v) if isinstance(v, Bucket) else v for k, v in bucket.items()}


def write_bytes(tree: Tree) -> bytes:
    out = io.BytesIO()
    size = write(out, [(name, to_new_bucket(b)) for name, b in sorted(tree.items())])  # type: ignore[arg-type]
    data = out.getvalue()
    assert size == len(data)
    return data


def read_tree(data: bytes) -> Tree:
    return {name: to_tree(bucket) for name, bucket in BoltFile(data).buckets()}


keys = st.binary(min_size=1, max_size=40)
# Mostly small values; now and then one larger than a page, which needs overflow pages (a
# short pattern repeated: random megabytes would only slow the search down).
large = st.builds(bytes.__mul__, st.binary(min_size=1, max_size=4), st.integers(1000, 3000))
values = st.one_of(st.binary(max_size=64), large)
buckets: st.SearchStrategy[Tree] = st.recursive(
    st.dictionaries(keys, values, max_size=20),
    lambda children: st.dictionaries(keys, st.one_of(values, children), max_size=6),
    max_leaves=100,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(keys, buckets, max_size=6))
def test_what_is_written_reads_back_the_same_and_passes_bbolts_check(tree: Tree) -> None:
    data = write_bytes(tree)
    assert read_tree(data) == tree
    assert BoltFile(data).check() == []


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.integers(min_value=0, max_value=200))
def test_many_keys_fill_several_leaves_under_branches(count: int, value_size: int) -> None:
    content = {i.to_bytes(8, "big"): bytes([i % 251]) * value_size for i in range(count)}
    data = write_bytes({b"key": content})  # type: ignore[dict-item]
    file = BoltFile(data)
    assert file.check() == []
    assert to_tree(file.bucket(b"key")) == content  # type: ignore[arg-type]


def test_an_empty_file_has_an_empty_root_leaf_freelist_and_two_metas() -> None:
    data = write_bytes({})
    file = BoltFile(data)
    assert len(data) == 4 * PAGE_SIZE
    assert [PageHeader.unpack(data, i * PAGE_SIZE).type for i in range(4)] == [
        PageType.META,
        PageType.META,
        PageType.LEAF,
        PageType.FREELIST,
    ]
    assert list(file.buckets()) == []
    assert file.free_pages() == []


def test_a_small_bucket_is_inline_and_a_bucket_over_a_quarter_page_is_not() -> None:
    # bbolt inlines a bucket without sub-buckets whose leaf fits in a quarter page.
    small = {b"k": b"v" * 100}
    large = {b"k": b"v" * (PAGE_SIZE // 4)}
    file = BoltFile(write_bytes({b"large": large, b"small": small}))  # type: ignore[dict-item]
    assert file.bucket(b"small").root == 0  # type: ignore[union-attr]
    assert file.bucket(b"large").root != 0  # type: ignore[union-attr]


def test_a_bucket_holding_a_bucket_is_never_inline() -> None:
    file = BoltFile(write_bytes({b"outer": {b"inner": {}}}))
    outer = file.bucket(b"outer")
    assert outer is not None and outer.root != 0
    assert to_tree(outer) == {b"inner": {}}


def test_a_value_larger_than_a_page_takes_overflow_pages() -> None:
    data = write_bytes({b"b": {b"k": b"x" * (2 * PAGE_SIZE)}})
    file = BoltFile(data)
    bucket = file.bucket(b"b")
    assert bucket is not None
    assert file.page(bucket.root).overflow == 2  # 16 + 16 + 1 + 8192 bytes: three pages


def test_keys_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="out of order"):
        write(io.BytesIO(), [(b"b", NewBucket([(b"2", b""), (b"1", b"")]))])
    with pytest.raises(ValueError, match="out of order"):
        write(io.BytesIO(), [(b"b", NewBucket()), (b"a", NewBucket())])


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        write(io.BytesIO(), [(b"b", NewBucket([(b"", b"v")]))])


def test_meta_0_is_one_transaction_newer_than_meta_1_as_in_an_etcd_snapshot() -> None:
    data = write_bytes({})
    meta0 = Meta.unpack(data, PAGE_HEADER.size)
    meta1 = Meta.unpack(data, PAGE_SIZE + PAGE_HEADER.size)
    assert meta0.txid == meta1.txid + 1
    assert BoltFile(data).meta == meta0


def test_a_torn_meta_falls_back_to_the_other_one() -> None:
    data = bytearray(write_bytes({b"b": {}}))
    data[PAGE_HEADER.size + 40] ^= 0xFF  # a bit of meta 0's high water mark: checksum fails
    assert BoltFile(bytes(data)).meta.txid == Meta.unpack(data, PAGE_SIZE + PAGE_HEADER.size).txid


def test_two_bad_metas_are_bbolts_errors() -> None:
    data = bytearray(write_bytes({}))
    data[PAGE_HEADER.size] ^= 0xFF
    data[PAGE_SIZE + PAGE_HEADER.size] ^= 0xFF
    with pytest.raises(BoltError, match="invalid database"):
        BoltFile(bytes(data))
    with pytest.raises(BoltError, match="invalid database"):
        BoltFile(b"SQLite format 3\x00" + bytes(PAGE_SIZE * 2))


def test_fnv1a_64_matches_the_published_test_vectors() -> None:
    assert fnv1a_64(b"") == 0xCBF29CE484222325
    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a_64(b"foobar") == 0x85944171F73967E8


def test_a_long_freelist_keeps_its_count_in_the_body() -> None:
    free = list(range(2, 2 + FREELIST_OVERFLOW_COUNT + 5))
    page = pack_freelist(7, free)
    assert PageHeader.unpack(page).count == FREELIST_OVERFLOW_COUNT
    assert unpack_freelist(page, 0, FREELIST_OVERFLOW_COUNT) == free


def test_check_reports_a_page_that_is_neither_used_nor_free() -> None:
    data = bytearray(write_bytes({b"b": {b"k": b"v" * PAGE_SIZE}}))
    file = BoltFile(bytes(data))
    bucket = file.bucket(b"b")
    assert bucket is not None
    # Cut the overflow page loose: it is still below the high water mark, but nothing uses it.
    header = file.page(bucket.root)
    offset = bucket.root * PAGE_SIZE
    data[offset : offset + PAGE_HEADER.size] = PageHeader(
        header.id, header.type, header.count, 0
    ).pack()
    assert BoltFile(bytes(data)).check() == [f"page {bucket.root + 1}: unreachable unfreed"]
