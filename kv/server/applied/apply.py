"""The apply layer: etcd's KV requests carried out on the MVCC store (chapter 1).

The store knows revisions and key ranges; the API asks for more: sorting, filtering by
revision, ``keys_only``, ``prev_kv``, ``ignore_value``. etcd does that work in its applier
(``etcdserver/apply.go``), between the request and the store, and so do we. Requests arrive
already validated (`kv.server.requests.validate`), so applying one never fails half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from kv.mvcc import KeyValue, MvccError, RangeResult, Store, WriteTxn
from kv.server import errors

RangeRequest = rpc_pb2.RangeRequest


class Reader(Protocol):
    """Anything that reads like `Store.range`: the store, or a write request seeing its writes."""

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
    ) -> RangeResult: ...


def to_pb(kv: KeyValue) -> kv_pb2.KeyValue:
    """The store's `KeyValue` as etcd's ``mvccpb.KeyValue``."""
    return kv_pb2.KeyValue(
        key=kv.key,
        value=kv.value,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        lease=kv.lease,
    )


def encode(kv: KeyValue) -> bytes:
    """The bytes etcd stores for a key-value (and hashes in HashKV)."""
    return to_pb(kv).SerializeToString()


_SORT_FIELDS: dict[int, Callable[[KeyValue], Any]] = {
    RangeRequest.KEY: lambda kv: kv.key,
    RangeRequest.VERSION: lambda kv: kv.version,
    RangeRequest.CREATE: lambda kv: kv.create_revision,
    RangeRequest.MOD: lambda kv: kv.mod_revision,
    RangeRequest.VALUE: lambda kv: kv.value,
}


def _revision_filters(request: RangeRequest) -> list[Callable[[KeyValue], bool]]:
    if not (
        request.min_mod_revision
        or request.max_mod_revision
        or request.min_create_revision
        or request.max_create_revision
    ):
        return []  # the usual range: no filter to build
    bounds = [
        (request.min_mod_revision, lambda kv: kv.mod_revision >= request.min_mod_revision),
        (request.max_mod_revision, lambda kv: kv.mod_revision <= request.max_mod_revision),
        (request.min_create_revision, lambda kv: kv.create_revision >= request.min_create_revision),
        (request.max_create_revision, lambda kv: kv.create_revision <= request.max_create_revision),
    ]
    return [keep for bound, keep in bounds if bound]


# --8<-- [start:range]
def apply_range(reader: Reader, request: RangeRequest) -> rpc_pb2.RangeResponse:
    """Range with etcd's extras: filters, sorting, ``limit``/``more``, ``keys_only``."""
    filters = _revision_filters(request)
    order = request.sort_order
    if request.sort_target != RangeRequest.KEY and order == RangeRequest.NONE:
        order = RangeRequest.ASCEND  # the store returns key order; any other target sorts
    # Sorting or filtering needs every key of the range first; otherwise one extra key is
    # enough to know whether the limit cut the answer (`more`).
    sorted_or_filtered = request.sort_order != RangeRequest.NONE or bool(filters)
    fetch = 0 if sorted_or_filtered or request.limit <= 0 else request.limit + 1
    try:
        result = reader.range(
            request.key,
            request.range_end,
            revision=request.revision,
            limit=fetch,
            count_only=request.count_only,
        )
    except MvccError as error:
        raise errors.from_mvcc(error) from error
    kvs = [kv for kv in result.kvs if all(keep(kv) for keep in filters)] if filters else result.kvs
    if order in (RangeRequest.ASCEND, RangeRequest.DESCEND):
        kvs.sort(key=_SORT_FIELDS[request.sort_target], reverse=order == RangeRequest.DESCEND)
    response = rpc_pb2.RangeResponse(count=result.count)
    response.header.revision = result.revision
    if 0 < request.limit < len(kvs):
        kvs, response.more = kvs[: request.limit], True
    for kv in kvs:
        response.kvs.add(
            key=kv.key,
            value=b"" if request.keys_only else kv.value,
            create_revision=kv.create_revision,
            mod_revision=kv.mod_revision,
            version=kv.version,
            lease=kv.lease,
        )
    return response


# --8<-- [end:range]


# --8<-- [start:put]
def apply_put(txn: WriteTxn, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
    """Put with ``prev_kv``, ``ignore_value`` and ``ignore_lease``. The lease, if any, was
    looked up before the write began (chapter 7: `kv.server.applied.leases`)."""
    response = rpc_pb2.PutResponse()
    value, lease = request.value, request.lease
    if request.prev_kv or request.ignore_value or request.ignore_lease:
        previous = txn.range(request.key).kvs
        if (request.ignore_value or request.ignore_lease) and not previous:
            raise errors.KEY_NOT_FOUND  # there is no current value or lease to keep
        if previous:
            if request.prev_kv:
                response.prev_kv.CopyFrom(to_pb(previous[0]))
            value = previous[0].value if request.ignore_value else value
            lease = previous[0].lease if request.ignore_lease else lease
    txn.put(request.key, value, lease)
    response.header.revision = txn.revision
    return response


# --8<-- [end:put]


def apply_delete_range(
    txn: WriteTxn, request: rpc_pb2.DeleteRangeRequest
) -> rpc_pb2.DeleteRangeResponse:
    """Delete a range; with ``prev_kv``, return what was deleted."""
    response = rpc_pb2.DeleteRangeResponse()
    if request.prev_kv:
        response.prev_kvs.extend(to_pb(kv) for kv in txn.range(request.key, request.range_end).kvs)
    response.deleted = txn.delete_range(request.key, request.range_end)
    response.header.revision = txn.revision
    return response


def apply_compact(store: Store, request: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
    """Compact the store's history at ``request.revision``."""
    try:
        store.compact(request.revision)
    except MvccError as error:
        raise errors.from_mvcc(error) from error
    response = rpc_pb2.CompactionResponse()
    response.header.revision = store.current_revision
    return response
