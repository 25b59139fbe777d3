"""Checks a request must pass before it is applied (chapter 1).

etcd refuses malformed requests at the gRPC layer, before anything is proposed or applied
(``etcdserver/api/v3rpc/key.go``), so a bad request never reaches the store half-way.
"""

from __future__ import annotations

from google.protobuf.message import Message

from kv.api.etcdserverpb import rpc_pb2
from kv.server import errors

# etcd wraps every write in an InternalRaftRequest before checking its size against
# --max-request-bytes: a request header (field 100, 2-byte tag; a uint64 id, up to 10 bytes)
# plus the request's own tag and length. We add the same framing so the limit bites where
# etcd's does, within a byte or two.
_ENVELOPE_HEADER_BYTES = 2 + 1 + 1 + 10


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def check_request_size(request: Message, max_request_bytes: int) -> None:
    """Refuse a write whose proposal would exceed --max-request-bytes."""
    body = request.ByteSize()
    proposal = _ENVELOPE_HEADER_BYTES + 1 + _varint_size(body) + body
    if proposal > max_request_bytes:
        raise errors.REQUEST_TOO_LARGE


def check_range(request: rpc_pb2.RangeRequest) -> None:
    if not request.key:
        raise errors.EMPTY_KEY
    # etcd 3.4 crashes on an unknown sort target (3.5 refuses it with this error; so do we).
    # An unknown sort order it accepts, and leaves the keys unsorted: see apply_range.
    if request.sort_target not in rpc_pb2.RangeRequest.SortTarget.values():
        raise errors.INVALID_SORT_OPTION


def check_put(request: rpc_pb2.PutRequest) -> None:
    if not request.key:
        raise errors.EMPTY_KEY
    if request.ignore_value and request.value:
        raise errors.VALUE_PROVIDED
    if request.ignore_lease and request.lease:
        raise errors.LEASE_PROVIDED


def check_delete_range(request: rpc_pb2.DeleteRangeRequest) -> None:
    if not request.key:
        raise errors.EMPTY_KEY
