"""The checker's model of leases (``kv/linearizability/leases.py``).

A grant makes a lease, a put may attach a key to it, and a revoke -- a client's, or the
leader's when the lease expired, recorded as a revoke -- deletes the lease and all its keys
at one revision. Histories where a key outlives its lease's revoke, where only some of the
keys go, or where keys vanish with no revoke at all are rejected.
"""

from __future__ import annotations

from typing import Any

from kv.linearizability import Get, GetResult, Operation, Put, PutResult, check
from kv.linearizability.leases import (
    LeaseGrant,
    LeaseGrantResult,
    LeaseModel,
    LeasePut,
    LeasePutResult,
    LeaseRevoke,
    LeaseRevokeResult,
)

MODEL = LeaseModel()
WITH_REVISIONS = LeaseModel(check_revisions=True)


def op(client: int, call: float, ret: float | None, input: Any, output: Any = None) -> Any:
    return Operation(client, call, ret, input, output)


GRANTED = [
    op(1, 0, 1, LeaseGrant(7, ttl=5), LeaseGrantResult(True)),
    op(1, 2, 3, LeasePut("a", "1", 7), LeasePutResult(True)),
    op(1, 4, 5, LeasePut("b", "1", 7), LeasePutResult(True)),
]


def test_a_revoke_deletes_every_key_attached_to_the_lease() -> None:
    history = [
        *GRANTED,
        op(1, 6, 7, LeaseRevoke(7), LeaseRevokeResult(True)),
        op(2, 8, 9, Get("a"), GetResult(None)),
        op(2, 8, 9, Get("b"), GetResult(None)),
    ]
    assert check(MODEL, history).linearizable


def test_a_key_that_outlives_its_lease_revoke_is_rejected() -> None:
    history = [
        *GRANTED,
        op(1, 6, 7, LeaseRevoke(7), LeaseRevokeResult(True)),
        op(2, 8, 9, Get("a"), GetResult(None)),
        op(2, 10, 11, Get("b"), GetResult("1")),
    ]
    result = check(MODEL, history)
    assert not result.linearizable, result
    assert "lease-revoke(7)" in result.explanation


def test_a_revoke_is_atomic_a_reader_never_sees_one_key_gone_and_the_other_there() -> None:
    # The revoke overlaps both reads, but a is gone before b is read as still there, and b's
    # read returned before a's began: no single instant explains both.
    history = [
        *GRANTED,
        op(1, 6, 20, LeaseRevoke(7), LeaseRevokeResult(True)),
        op(2, 8, 9, Get("a"), GetResult(None)),
        op(3, 10, 11, Get("b"), GetResult("1")),
    ]
    assert not check(MODEL, history).linearizable


def test_keys_that_vanish_without_a_recorded_revoke_or_expiry_are_rejected() -> None:
    history = [*GRANTED, op(2, 8, 9, Get("a"), GetResult(None))]
    assert not check(MODEL, history).linearizable


def test_an_expiry_recorded_as_a_pending_revoke_may_delete_the_keys_at_any_later_time() -> None:
    history = [
        *GRANTED,
        op(0, 6, None, LeaseRevoke(7)),  # the leader proposed the expiry; applied or not
        op(2, 8, 9, Get("b"), GetResult("1")),
        op(2, 10, 11, Get("a"), GetResult(None)),
    ]
    assert check(MODEL, history).linearizable  # the expiry took effect between the reads
    history[-2:] = [
        op(2, 8, 9, Get("a"), GetResult(None)),
        op(2, 10, 11, Get("b"), GetResult("1")),
    ]
    assert not check(MODEL, history).linearizable  # b was still there after a was gone


def test_a_plain_put_detaches_the_key_from_its_lease() -> None:
    history = [
        *GRANTED,
        op(1, 6, 7, Put("a", "kept"), PutResult()),
        op(1, 8, 9, LeaseRevoke(7), LeaseRevokeResult(True)),
        op(2, 10, 11, Get("a"), GetResult("kept")),
        op(2, 12, 13, Get("b"), GetResult(None)),
    ]
    assert check(MODEL, history).linearizable


def test_a_put_with_a_revoked_or_unknown_lease_is_refused_and_writes_nothing() -> None:
    history = [
        *GRANTED,
        op(1, 6, 7, LeaseRevoke(7), LeaseRevokeResult(True)),
        op(1, 8, 9, LeasePut("a", "2", 7), LeasePutResult(False)),
        op(1, 10, 11, LeasePut("c", "2", 8), LeasePutResult(False)),
        op(2, 12, 13, Get("a"), GetResult(None)),
    ]
    assert check(MODEL, history).linearizable
    accepted = [*history[:4], op(1, 10, 11, LeasePut("c", "2", 8), LeasePutResult(True))]
    assert not check(MODEL, accepted).linearizable


def test_an_id_in_use_cannot_be_granted_again_and_a_revoked_one_can() -> None:
    history = [
        op(1, 0, 1, LeaseGrant(7, 5), LeaseGrantResult(True)),
        op(1, 2, 3, LeaseGrant(7, 5), LeaseGrantResult(False)),
        op(1, 4, 5, LeaseRevoke(7), LeaseRevokeResult(True)),
        op(1, 6, 7, LeaseRevoke(7), LeaseRevokeResult(False)),
        op(1, 8, 9, LeaseGrant(7, 5), LeaseGrantResult(True)),
    ]
    assert check(MODEL, history).linearizable
    twice = [history[0], op(1, 2, 3, LeaseGrant(7, 5), LeaseGrantResult(True))]
    assert not check(MODEL, twice).linearizable


def test_a_revoke_takes_one_revision_for_all_its_keys_and_none_without_keys() -> None:
    history = [
        op(1, 0, 1, LeaseGrant(7, 5), LeaseGrantResult(True, revision=1)),
        op(1, 2, 3, LeasePut("a", "1", 7), LeasePutResult(True, revision=2)),
        op(1, 4, 5, LeasePut("b", "1", 7), LeasePutResult(True, revision=3)),
        op(1, 6, 7, LeaseRevoke(7), LeaseRevokeResult(True, revision=4)),
        op(1, 8, 9, LeaseGrant(8, 5), LeaseGrantResult(True, revision=4)),
        op(1, 10, 11, LeaseRevoke(8), LeaseRevokeResult(True, revision=4)),
    ]
    assert check(WITH_REVISIONS, history).linearizable
    history[3] = op(1, 6, 7, LeaseRevoke(7), LeaseRevokeResult(True, revision=5))
    assert not check(WITH_REVISIONS, history).linearizable


def test_partitioning_keeps_a_lease_with_its_keys_and_splits_unrelated_keys_off() -> None:
    history = [*GRANTED, op(2, 0, 1, Put("c", "1"), PutResult())]
    assert sorted(len(part) for part in MODEL.partition(history)) == [1, 3]
