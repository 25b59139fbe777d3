"""Checks a request must pass before it is applied (chapter 1; transactions, chapter 6).

etcd refuses malformed requests at the gRPC layer, before anything is proposed or applied
(``etcdserver/api/v3rpc/key.go``), so a bad request never reaches the store half-way. A txn's
form is checked here on both branches, whichever will run; what depends on the store is
checked when it is applied (`kv.server.applied.txn`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


#: The sort targets etcd knows (a set, not the enum's list built anew for every range).
_SORT_TARGETS = frozenset(rpc_pb2.RangeRequest.SortTarget.values())


def check_range(request: rpc_pb2.RangeRequest) -> None:
    if not request.key:
        raise errors.EMPTY_KEY
    # etcd 3.4 crashes on an unknown sort target (3.5 refuses it with this error; so do we).
    # An unknown sort order it accepts, and leaves the keys unsorted: see apply_range.
    if request.sort_target not in _SORT_TARGETS:
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


# --8<-- [start:txn]
def check_txn(request: rpc_pb2.TxnRequest, max_txn_ops: int) -> None:
    """Refuse a txn whose form is wrong, on either branch, before it is proposed.

    etcd's order (``etcdserver/api/v3rpc/key.go``, ``Txn``): the size of the whole request and
    each operation's form (`_check_txn_form`), then duplicate keys in the success branch, then
    in the failure branch (`_writes`).
    """
    _check_txn_form(request, max_txn_ops)
    _writes(request.success)
    _writes(request.failure)


def _check_txn_form(request: rpc_pb2.TxnRequest, max_txn_ops: int) -> None:
    # --max-txn-ops bounds the longest of the three lists; a nested txn gets what is left of
    # the budget after its parent's longest list (etcd: checkTxnRequest).
    longest = max(len(request.compare), len(request.success), len(request.failure))
    if longest > max_txn_ops:
        raise errors.TOO_MANY_OPS
    if any(not compare.key for compare in request.compare):
        raise errors.EMPTY_KEY
    for op in [*request.success, *request.failure]:
        match op.WhichOneof("request"):
            case "request_range":
                check_range(op.request_range)
            case "request_put":
                check_put(op.request_put)
            case "request_delete_range":
                check_delete_range(op.request_delete_range)
            case "request_txn":
                _check_txn_form(op.request_txn, max_txn_ops - longest)
            case None:  # an empty RequestOp
                raise errors.KEY_NOT_FOUND


# --8<-- [end:txn]


# --8<-- [start:duplicates]
@dataclass(frozen=True, slots=True)
class _Deleted:
    """The keys a DeleteRange deletes, as etcd's duplicate check sees them: one key, or
    ``[key, range_end)`` compared byte-wise, so a range_end of ``\\0`` ("every key from key
    on" when deleting) covers no key here (etcd: an ``adt`` interval that ends before it
    begins)."""

    key: bytes
    range_end: bytes

    def covers(self, key: bytes) -> bool:
        if not self.range_end:
            return key == self.key
        return self.key <= key < self.range_end


def _writes(ops: Sequence[rpc_pb2.RequestOp]) -> tuple[set[bytes], list[_Deleted]]:
    """The keys ``ops`` put and the ranges they delete, nested txns included; refuse a key put
    twice or put inside a deleted range (etcd: ``checkIntervals``, step for step).

    The two branches of one nested txn never both run, so they may put the same key; two
    deletes may overlap. etcd checks a nested txn's puts against the deletes of its own level
    and of the nested txns before it, and this level's puts against all of them.
    """
    deleted = [
        _Deleted(op.request_delete_range.key, op.request_delete_range.range_end)
        for op in ops
        if op.WhichOneof("request") == "request_delete_range"
    ]
    put: set[bytes] = set()
    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        then_puts, then_deletes = _writes(op.request_txn.success)
        else_puts, else_deletes = _writes(op.request_txn.failure)
        for key in then_puts:
            _refuse_duplicate(key in put, key, deleted)
            put.add(key)
        for key in else_puts:
            _refuse_duplicate(key in put and key not in then_puts, key, deleted)
            put.add(key)
        deleted += then_deletes + else_deletes
    for op in ops:
        if op.WhichOneof("request") == "request_put":
            key = op.request_put.key
            _refuse_duplicate(key in put, key, deleted)
            put.add(key)
    return put, deleted


def _refuse_duplicate(put_before: bool, key: bytes, deleted: list[_Deleted]) -> None:
    if put_before or any(range_.covers(key) for range_ in deleted):
        raise errors.DUPLICATE_KEY


# --8<-- [end:duplicates]
