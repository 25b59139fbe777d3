"""Revisions: the (main, sub) logical clock, and its encoding as etcd's backend key."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kv.mvcc import Revision

INT64 = st.integers(min_value=0, max_value=2**63 - 1)
REVISIONS = st.builds(Revision, INT64, INT64)


def test_sub_revision_defaults_to_zero() -> None:
    """A write request's first operation is sub revision 0 (etcd: mvcc/revision.go)."""
    assert Revision(7) == Revision(7, 0)


def test_revisions_order_by_main_first() -> None:
    assert Revision(2, 9) < Revision(3, 0)


def test_revisions_with_the_same_main_order_by_sub() -> None:
    assert Revision(3, 0) < Revision(3, 1) < Revision(3, 2)


def test_equal_main_and_sub_are_equal_and_hash_equal() -> None:
    assert Revision(4, 1) == Revision(4, 1)
    assert hash(Revision(4, 1)) == hash(Revision(4, 1))


def test_revision_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Revision(1).main = 2  # type: ignore[misc]


def test_str_is_main_dot_sub() -> None:
    assert str(Revision(12, 3)) == "12.3"


def test_to_bytes_is_main_underscore_sub_as_8_byte_big_endian() -> None:
    """etcd's revToBytes: 8 bytes main, '_', 8 bytes sub, big-endian (17 bytes)."""
    assert Revision(0x0102, 0x03).to_bytes() == (
        b"\x00\x00\x00\x00\x00\x00\x01\x02" + b"_" + b"\x00\x00\x00\x00\x00\x00\x00\x03"
    )


def test_tombstone_appends_the_t_mark() -> None:
    """etcd's appendMarkTombstone: a tombstone's backend key is the revision plus b't'."""
    encoded = Revision(5, 1).to_bytes(tombstone=True)
    assert len(encoded) == 18
    assert encoded == Revision(5, 1).to_bytes() + b"t"


@given(REVISIONS)
def test_from_bytes_inverts_to_bytes(revision: Revision) -> None:
    assert Revision.from_bytes(revision.to_bytes()) == revision


@given(REVISIONS)
def test_from_bytes_ignores_the_tombstone_mark(revision: Revision) -> None:
    assert Revision.from_bytes(revision.to_bytes(tombstone=True)) == revision


@given(REVISIONS, REVISIONS)
def test_byte_order_is_revision_order(first: Revision, second: Revision) -> None:
    """The backend iterates keys in byte order, which must be revision order."""
    assert (first.to_bytes() < second.to_bytes()) == (first < second)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 16,
        b"\x00" * 19,
        b"\x00" * 8 + b"-" + b"\x00" * 8,
    ],
    ids=["empty", "too-short", "too-long", "no-separator"],
)
def test_from_bytes_rejects_what_is_not_a_revision_key(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a revision key"):
        Revision.from_bytes(data)
