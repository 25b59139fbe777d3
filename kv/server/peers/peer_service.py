"""`PeerService`: the gRPC end of the peer transport, served on the peer URLs (chapter 4).

`kv.server.peers.transport.PeerTransport` streams each peer's messages over a plain
connection (`kv.server.peers.inbound` receives them) and makes every other call to a peer
with kv's gRPC service ``kvpeerpb.Peer``; this is that service. A snapshot
(``Peer.SendSnapshot``) is checked to come from our cluster (`PeerTransport.check_cluster`)
and handed to the transport (`PeerTransport.receive`), which hands it to Raft. It also serves
kv's fault hooks (``Peer.SetFaults``, ``GetFaults``: partitions; ``SetDiskFaults``: a slow
disk, chapter 10), the member list for joining members (``GetMembers``), and chapter 7's
lease requests that followers forward to the leader (``LeaseRenew``, ``LeaseTimeToLive``),
which the member's `LeaseAnswers` answer. Moved out of `kv.server.peers.transport`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import grpc

from kv.api.etcdserverpb import rpc_pb2
from kv.api.peerpb import peer_pb2, peer_pb2_grpc
from kv.server.errors import EtcdError
from kv.server.peers.transport import PeerTransport

log = logging.getLogger(__name__)


class LeaseAnswers(Protocol):
    """How the leader answers a forwarded lease request (`kv.server.requests.leases`); raises
    `kv.server.errors.EtcdError` with etcd's status."""

    async def renew_here(
        self, request: rpc_pb2.LeaseKeepAliveRequest
    ) -> rpc_pb2.LeaseKeepAliveResponse: ...

    async def time_to_live_here(
        self, request: rpc_pb2.LeaseTimeToLiveRequest
    ) -> rpc_pb2.LeaseTimeToLiveResponse: ...


class SlowableDisk(Protocol):
    """A disk whose fsyncs the fault hook can slow (`kv.server.disk.raft_disk.RaftDisk`)."""

    fsync_delay: float


class PeerService(peer_pb2_grpc.PeerServicer):
    """The receiving end of `PeerTransport`, served on the peer URLs."""

    def __init__(
        self,
        transport: PeerTransport,
        leases: LeaseAnswers | None = None,
        disk: SlowableDisk | None = None,
    ) -> None:
        self.transport = transport
        self.leases = leases
        self.disk = disk

    async def SendSnapshot(self, request, context):  # type: ignore[no-untyped-def]
        try:
            self.transport.check_cluster(context.invocation_metadata())
            self.transport.receive(request)
        except PermissionError as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        return peer_pb2.SnapshotAck()

    async def SetFaults(self, request, context):  # type: ignore[no-untyped-def]
        self.transport.blocked = set(request.blocked)
        log.warning("fault hook: now cut off from %s", sorted(f"{m:x}" for m in request.blocked))
        return peer_pb2.Faults(blocked=sorted(self.transport.blocked))

    async def GetFaults(self, request, context):  # type: ignore[no-untyped-def]
        return peer_pb2.Faults(blocked=sorted(self.transport.blocked))

    async def SetDiskFaults(self, request, context):  # type: ignore[no-untyped-def]
        disk = self.disk
        if disk is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this member has no disk hook")
            return None
        disk.fsync_delay = request.fsync_delay_ms / 1000
        log.warning("fault hook: each WAL fsync now takes %d ms more", request.fsync_delay_ms)
        return peer_pb2.DiskFaults(fsync_delay_ms=request.fsync_delay_ms)

    async def GetMembers(self, request, context):  # type: ignore[no-untyped-def]
        return self.transport.inbox.members()

    async def LeaseRenew(self, request, context):  # type: ignore[no-untyped-def]
        return await self._answer_lease(context, lambda leases: leases.renew_here(request))

    async def LeaseTimeToLive(self, request, context):  # type: ignore[no-untyped-def]
        return await self._answer_lease(context, lambda leases: leases.time_to_live_here(request))

    async def _answer_lease(
        self,
        context: Any,  # grpc.aio.ServicerContext, untyped as in the methods above
        answer: Callable[[LeaseAnswers], Awaitable[Any]],
    ) -> Any:
        leases = self.leases
        if leases is None:  # not serving clients yet: the follower asks again
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: not leader")
            return None
        try:
            self.transport.check_cluster(context.invocation_metadata())
            return await answer(leases)
        except PermissionError as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        except EtcdError as error:
            await context.abort(error.code, error.message)
