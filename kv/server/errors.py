"""etcd's gRPC errors: a status code and a message clients match byte for byte (chapter 1).

Go clients turn an error back into a typed value by its exact text (etcd:
``etcdserver/api/v3rpc/rpctypes/error.go``), so each message below is etcd's, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc import StatusCode

from kv.lease import (
    LeaseError,
    LeaseExistsError,
    LeaseNotFoundError,
    LeaseTTLTooLargeError,
    NotPrimaryError,
)
from kv.mvcc import MvccError


@dataclass(frozen=True, slots=True)
class EtcdError(Exception):
    """An error to send to the client as a gRPC status."""

    code: StatusCode
    message: str

    def __str__(self) -> str:
        return self.message

    @classmethod
    def of_failed_call(cls, error: grpc.aio.AioRpcError) -> EtcdError:
        """The error a failed call carries (a client's, or a member's forwarded to the leader):
        its status code and the server's text.
        """
        return cls(error.code(), error.details() or "")


def _error(code: StatusCode, message: str) -> EtcdError:
    return EtcdError(code, "etcdserver: " + message)


EMPTY_KEY = _error(StatusCode.INVALID_ARGUMENT, "key is not provided")
KEY_NOT_FOUND = _error(StatusCode.INVALID_ARGUMENT, "key not found")
VALUE_PROVIDED = _error(StatusCode.INVALID_ARGUMENT, "value is provided")
LEASE_PROVIDED = _error(StatusCode.INVALID_ARGUMENT, "lease is provided")
INVALID_SORT_OPTION = _error(StatusCode.INVALID_ARGUMENT, "invalid sort option")
REQUEST_TOO_LARGE = _error(StatusCode.INVALID_ARGUMENT, "request is too large")
LEASE_NOT_FOUND = _error(StatusCode.NOT_FOUND, "requested lease not found")
# Leases (chapter 7).
LEASE_EXIST = _error(StatusCode.FAILED_PRECONDITION, "lease already exists")
LEASE_TTL_TOO_LARGE = _error(StatusCode.OUT_OF_RANGE, "too large lease TTL")
# Transactions (chapter 6).
TOO_MANY_OPS = _error(StatusCode.INVALID_ARGUMENT, "too many operations in txn request")
DUPLICATE_KEY = _error(StatusCode.INVALID_ARGUMENT, "duplicate key given in txn request")
# Raised alarms (chapter 2, kv.server.applied.alarms).
NO_SPACE = _error(StatusCode.RESOURCE_EXHAUSTED, "mvcc: database space exceeded")
CORRUPT = _error(StatusCode.DATA_LOSS, "corrupt cluster")


def from_mvcc(error: MvccError) -> EtcdError:
    """The gRPC error etcd sends for an error of the MVCC store."""
    return EtcdError(StatusCode.OUT_OF_RANGE, "etcdserver: " + error.message)


def from_lease(error: LeaseError) -> EtcdError:
    """The gRPC error etcd sends for an error of the lessor (etcd: ``v3rpc/util.go``)."""
    by_kind: dict[type[LeaseError], EtcdError] = {
        LeaseNotFoundError: LEASE_NOT_FOUND,
        LeaseExistsError: LEASE_EXIST,
        LeaseTTLTooLargeError: LEASE_TTL_TOO_LARGE,
        NotPrimaryError: NOT_LEADER,  # a forwarded renewal reached a member that just lost it
    }
    return by_kind.get(type(error), EtcdError(StatusCode.UNKNOWN, error.message))


# A replicated cluster (chapters 4 and 5; etcd: etcdserver/errors.go, v3rpc/rpctypes).
STOPPED = _error(StatusCode.UNAVAILABLE, "server stopped")
NO_LEADER = _error(StatusCode.UNAVAILABLE, "no leader")
NOT_LEADER = _error(StatusCode.FAILED_PRECONDITION, "not leader")
LEADER_CHANGED = _error(StatusCode.UNAVAILABLE, "leader changed")
TIMEOUT = _error(StatusCode.UNAVAILABLE, "request timed out")
TIMEOUT_DUE_TO_LEADER_FAIL = _error(
    StatusCode.UNAVAILABLE, "request timed out, possibly due to previous leader failure"
)
# Not an "etcdserver:" error: etcd passes Raft's own error through with code Unknown.
PROPOSAL_DROPPED = EtcdError(StatusCode.UNKNOWN, "raft proposal dropped")
# Membership (chapter 5).
MEMBER_NOT_FOUND = _error(StatusCode.NOT_FOUND, "member not found")
PEER_URL_EXIST = _error(StatusCode.FAILED_PRECONDITION, "Peer URLs already exists")
MEMBER_NOT_LEARNER = _error(StatusCode.FAILED_PRECONDITION, "can only promote a learner member")
LEARNER_NOT_READY = _error(
    StatusCode.FAILED_PRECONDITION,
    "can only promote a learner member which is in sync with leader",
)
UNHEALTHY = _error(StatusCode.UNAVAILABLE, "unhealthy cluster")
# etcd 3.4 does not map this one to a gRPC code: clients see Unknown.
NOT_ENOUGH_STARTED_MEMBERS = _error(
    StatusCode.UNKNOWN, "re-configuration failed due to not enough started members"
)
BAD_LEADER_TRANSFEREE = _error(StatusCode.FAILED_PRECONDITION, "bad leader transferee")
# Unknown, too (etcd 3.4 does not map it).
LEADERSHIP_TRANSFER_TIMEOUT = _error(
    StatusCode.UNKNOWN, "request timed out, leader transfer took too long"
)
INVALID_MEMBER_URLS = _error(StatusCode.INVALID_ARGUMENT, "given member URLs are invalid")
NOT_SUPPORTED_FOR_LEARNER = _error(StatusCode.UNAVAILABLE, "rpc not supported for learner")
# What a write waiting for a leader that never came gets: etcd 3.4 blocks the proposal and
# passes the context's own error through (not an "etcdserver:" error).
DEADLINE_EXCEEDED = EtcdError(StatusCode.UNKNOWN, "context deadline exceeded")
TOO_MANY_LEARNERS = _error(StatusCode.FAILED_PRECONDITION, "too many learner members in cluster")
