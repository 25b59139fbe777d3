"""The space quota: how big the backend may grow before writes stop (chapter 2).

A database that fills the disk takes the member down with it, and one that grows without
bound gets slow to snapshot, defragment and send to a new member. So etcd gives the backend
a quota, ``--quota-backend-bytes`` (0 = 2 GiB), and checks it *before* proposing a request
that adds data (etcd: ``etcdserver/quota.go``, ``etcdserver/api/v3rpc/quota.go``):

    backend size + the request's estimated cost < quota    else: raise NOSPACE and refuse

The size is the whole database file, free pages included (what ``Status.dbSize`` reports),
so compaction alone does not help: only a defragment gives the free pages back. The cost is
an estimate, not the bytes the request will really take: a put costs its key and value plus
256 bytes of overhead, a lease 64. When the check fails the member raises the NOSPACE alarm
through the log (`kv.server.applied.alarms`) and refuses the request with ResourceExhausted
``etcdserver: mvcc: database space exceeded``; from then on, puts are refused when applied
until an operator disarms the alarm.

Each member checks again as it applies the request, against its own backend, and a request
that no longer fits is applied all the same but answered with the space error
(`kv.server.replica.space`).

The check comes first, before the request is validated: with the quota exceeded, even a put
with an empty key gets the space error, as from etcd.
"""

from __future__ import annotations

from typing import Protocol

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest

#: etcd's default quota, used when --quota-backend-bytes is 0 (etcd: DefaultQuotaBytes).
DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024
#: Above this etcd warns that the quota may degrade performance (etcd: MaxQuotaBytes).
MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024
#: The estimated cost of a stored key beyond its key and value bytes (etcd: kvOverhead).
KV_OVERHEAD = 256
#: The estimated cost of a lease (etcd: leaseOverhead); LeaseGrant arrives in chapter 7.
LEASE_OVERHEAD = 64


class Sized(Protocol):
    """Anything with a size in bytes: `kv.backend.Backend`."""

    @property
    def size_bytes(self) -> int: ...


def quota_bytes(configured: int) -> int:
    """The quota for a ``--quota-backend-bytes`` value: 0 means etcd's default, 2 GiB."""
    return configured if configured > 0 else DEFAULT_QUOTA_BYTES


def cost_put(request: rpc_pb2.PutRequest) -> int:
    """What a put is estimated to add to the backend (etcd: ``costPut``)."""
    return KV_OVERHEAD + len(request.key) + len(request.value)


def cost_txn(request: rpc_pb2.TxnRequest) -> int:
    """What a txn is estimated to add: the costlier branch's puts (etcd: ``costTxnReq``; the
    puts of nested txns are not counted). Chapter 6."""
    success, failure = (
        sum(cost_put(op.request_put) for op in ops if op.WhichOneof("request") == "request_put")
        for ops in (request.success, request.failure)
    )
    return max(success, failure)


def entry_cost(request: InternalRaftRequest) -> int | None:
    """What a logged request costs in the check made when it is applied, or None for a kind
    that check does not look at (etcd: ``quotaApplierV3`` wraps Put, Txn and LeaseGrant)."""
    if request.HasField("put"):
        return cost_put(request.put)
    if request.HasField("txn"):
        return cost_txn(request.txn)
    if request.HasField("lease_grant"):
        return LEASE_OVERHEAD
    return None


# --8<-- [start:quota]
class BackendQuota:
    """The space quota of one backend (etcd: ``backendQuota``)."""

    def __init__(self, backend: Sized, quota: int) -> None:
        self.backend = backend
        self.quota = quota

    def available(self, cost: int) -> bool:
        """Whether a request of this estimated cost still fits (etcd: ``Available``)."""
        return self.backend.size_bytes + cost < self.quota

    def fits(self, request: InternalRaftRequest) -> bool:
        """Whether a logged request fits as it is applied (`kv.server.replica.space`)."""
        cost = entry_cost(request)
        return cost is None or self.available(cost)


# --8<-- [end:quota]
