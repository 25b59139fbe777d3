"""etcd's gRPC errors: a status code and a message clients match byte for byte (chapter 1).

Go clients turn an error back into a typed value by its exact text (etcd:
``etcdserver/api/v3rpc/rpctypes/error.go``), so each message below is etcd's, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass

from grpc import StatusCode

from kv.mvcc import MvccError


@dataclass(frozen=True, slots=True)
class EtcdError(Exception):
    """An error to send to the client as a gRPC status."""

    code: StatusCode
    message: str

    def __str__(self) -> str:
        return self.message


def _error(code: StatusCode, message: str) -> EtcdError:
    return EtcdError(code, "etcdserver: " + message)


EMPTY_KEY = _error(StatusCode.INVALID_ARGUMENT, "key is not provided")
KEY_NOT_FOUND = _error(StatusCode.INVALID_ARGUMENT, "key not found")
VALUE_PROVIDED = _error(StatusCode.INVALID_ARGUMENT, "value is provided")
LEASE_PROVIDED = _error(StatusCode.INVALID_ARGUMENT, "lease is provided")
INVALID_SORT_OPTION = _error(StatusCode.INVALID_ARGUMENT, "invalid sort option")
REQUEST_TOO_LARGE = _error(StatusCode.INVALID_ARGUMENT, "request is too large")
LEASE_NOT_FOUND = _error(StatusCode.NOT_FOUND, "requested lease not found")
# Raised alarms (chapter 2, kv.server.alarms).
NO_SPACE = _error(StatusCode.RESOURCE_EXHAUSTED, "mvcc: database space exceeded")
CORRUPT = _error(StatusCode.DATA_LOSS, "corrupt cluster")


def from_mvcc(error: MvccError) -> EtcdError:
    """The gRPC error etcd sends for an error of the MVCC store."""
    return EtcdError(StatusCode.OUT_OF_RANGE, "etcdserver: " + error.message)
