"""The parts of a ``TxnRequest``, as plain functions (chapter 6): `compare` builds a
comparison, `range_op`, `put_op`, `delete_op` and `txn_op` the operations of a branch, and
`txn_request` the whole request (what `kv.client.KVClient.txn` sends)::

    await client.txn(
        [compare("k", "value", "=", "v1")],
        [put_op("k", "v2")],
        [range_op("k")],
    )
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kv.api.etcdserverpb import rpc_pb2
from kv.client.keys import Bytes, to_bytes

#: ``compare``'s targets and relations, named as etcdctl's txn syntax names them.
COMPARE_TARGETS = {
    "version": rpc_pb2.Compare.VERSION,
    "create": rpc_pb2.Compare.CREATE,
    "mod": rpc_pb2.Compare.MOD,
    "value": rpc_pb2.Compare.VALUE,
    "lease": rpc_pb2.Compare.LEASE,
}
COMPARE_RESULTS = {
    "=": rpc_pb2.Compare.EQUAL,
    "!=": rpc_pb2.Compare.NOT_EQUAL,
    ">": rpc_pb2.Compare.GREATER,
    "<": rpc_pb2.Compare.LESS,
}
#: The ``target_union`` member each target's operand goes in.
_OPERANDS = {"version": "version", "create": "create_revision", "mod": "mod_revision"}


def compare(
    key: Bytes, target: str, result: str, operand: int | Bytes, *, range_end: Bytes = b""
) -> rpc_pb2.Compare:
    """``compare("k", "value", "=", "v1")``, ``compare("k", "create", "=", 0)`` (k is absent),
    ``compare("p", "mod", "<", 9, range_end=prefix_end("p"))`` (every key under p)."""
    built = rpc_pb2.Compare(
        key=to_bytes(key),
        range_end=to_bytes(range_end),
        target=COMPARE_TARGETS[target],
        result=COMPARE_RESULTS[result],
    )
    if isinstance(operand, int):
        setattr(built, _OPERANDS.get(target, target), operand)
    else:
        built.value = to_bytes(operand)
    return built


def range_op(key: Bytes, range_end: Bytes = b"", **fields: Any) -> rpc_pb2.RequestOp:
    """A range in a txn; ``fields`` are `RangeRequest`'s (``revision=3``, ``limit=1``...)."""
    request = rpc_pb2.RangeRequest(key=to_bytes(key), range_end=to_bytes(range_end), **fields)
    return rpc_pb2.RequestOp(request_range=request)


def put_op(key: Bytes, value: Bytes, **fields: Any) -> rpc_pb2.RequestOp:
    """A put in a txn; ``fields`` are `PutRequest`'s (``prev_kv=True``...)."""
    request = rpc_pb2.PutRequest(key=to_bytes(key), value=to_bytes(value), **fields)
    return rpc_pb2.RequestOp(request_put=request)


def delete_op(key: Bytes, range_end: Bytes = b"", **fields: Any) -> rpc_pb2.RequestOp:
    """A delete in a txn; ``fields`` are `DeleteRangeRequest`'s (``prev_kv=True``)."""
    request = rpc_pb2.DeleteRangeRequest(key=to_bytes(key), range_end=to_bytes(range_end), **fields)
    return rpc_pb2.RequestOp(request_delete_range=request)


def txn_op(
    compare: Sequence[rpc_pb2.Compare] = (),
    success: Sequence[rpc_pb2.RequestOp] = (),
    failure: Sequence[rpc_pb2.RequestOp] = (),
) -> rpc_pb2.RequestOp:
    """A txn nested in a txn's branch."""
    return rpc_pb2.RequestOp(request_txn=txn_request(compare, success, failure))


def txn_request(
    compare: Sequence[rpc_pb2.Compare] = (),
    success: Sequence[rpc_pb2.RequestOp] = (),
    failure: Sequence[rpc_pb2.RequestOp] = (),
) -> rpc_pb2.TxnRequest:
    return rpc_pb2.TxnRequest(compare=compare, success=success, failure=failure)
