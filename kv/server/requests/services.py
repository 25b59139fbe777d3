"""etcd's gRPC services, answered by the member's `Server` (chapter 1).

Each servicer method is one line: hand the request to the server, and turn an `EtcdError` into
a gRPC status with etcd's code and message. Every RPC of a service kv does not serve (Auth,
not planned: `kv.server.requests.unimplemented`) answers UNIMPLEMENTED saying so: a client
learns what kv lacks instead of hanging or crashing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kv.api.etcdserverpb import rpc_pb2_grpc
from kv.client import KVClient
from kv.server.errors import EtcdError
from kv.server.requests.lock_election import add_lock_election_services
from kv.server.requests.server import Server
from kv.server.requests.unimplemented import add_not_served_refusal
from kv.server.requests.watch_service import WatchService

Request = TypeVar("Request")
Response = TypeVar("Response")


async def _answer(
    context: grpc.aio.ServicerContext[Request, Response],
    handle: Callable[[Request], Awaitable[Response]],
    request: Request,
) -> Response:
    try:
        return await handle(request)
    except EtcdError as error:
        await context.abort(error.code, error.message)


async def _answer_now(
    context: grpc.aio.ServicerContext[Request, Response], handle: Callable[[], Response]
) -> Response:
    """`_answer` for a request the server answers at once, without waiting."""
    try:
        return handle()
    except EtcdError as error:
        await context.abort(error.code, error.message)


class KVService(rpc_pb2_grpc.KVServicer):
    """etcdserverpb.KV: Range, Put, DeleteRange, Compact (chapter 1); Txn (chapter 6)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def Range(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.range, request)

    async def Put(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.put, request)

    async def DeleteRange(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.delete_range, request)

    async def Compact(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.compact, request)

    async def Txn(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.txn, request)


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    """etcdserverpb.Maintenance: Status and HashKV (chapter 1); Alarm, Defragment, Snapshot
    and Hash (chapter 2); MoveLeader (chapter 5)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def Status(self, request, context):  # type: ignore[no-untyped-def]
        return self.server.status()

    async def MoveLeader(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.reconfiguration.move_leader, request)

    async def HashKV(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer_now(context, lambda: self.server.hash_kv(request))

    async def Hash(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer_now(context, self.server.hash)

    async def Alarm(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.alarm, request)

    async def Defragment(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer_now(context, self.server.defragment)

    async def Snapshot(self, request, context):  # type: ignore[no-untyped-def]
        # A server-streaming RPC: the blobs as the server yields them, then the hash.
        try:
            async for response in self.server.snapshot():
                yield response
        except EtcdError as error:
            await context.abort(error.code, error.message)


class ClusterService(rpc_pb2_grpc.ClusterServicer):
    """etcdserverpb.Cluster: MemberList (chapter 1); MemberAdd, MemberRemove, MemberUpdate
    and MemberPromote (chapter 5)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def MemberList(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer_now(context, self.server.member_list)

    async def MemberAdd(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.reconfiguration.member_add, request)

    async def MemberRemove(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.reconfiguration.member_remove, request)

    async def MemberUpdate(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.reconfiguration.member_update, request)

    async def MemberPromote(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.server.reconfiguration.member_promote, request)


class LeaseService(rpc_pb2_grpc.LeaseServicer):
    """etcdserverpb.Lease: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive and
    LeaseLeases (chapter 7)."""

    def __init__(self, server: Server) -> None:
        self.leases = server.leases

    async def LeaseGrant(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.leases.grant, request)

    async def LeaseRevoke(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.leases.revoke, request)

    async def LeaseKeepAlive(self, request_iterator, context):  # type: ignore[no-untyped-def]
        # A bidirectional stream: one answer per keep-alive, in order; an error ends it. On a
        # learner it is refused before any request, as etcd's stream interceptor does.
        try:
            self.leases.server.refuse_on_learner()
            async for request in request_iterator:
                yield await self.leases.keep_alive(request)
        except EtcdError as error:
            await context.abort(error.code, error.message)

    async def LeaseTimeToLive(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.leases.time_to_live, request)

    async def LeaseLeases(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer_now(context, self.leases.leases)


async def add_services(grpc_server: grpc.aio.Server, server: Server, own_client: KVClient) -> None:
    """Register every service kv answers, each answered by ``server``, on ``grpc_server``;
    Lock and Election through ``own_client``, a client of this member (chapter 9)."""
    rpc_pb2_grpc.add_KVServicer_to_server(KVService(server), grpc_server)
    rpc_pb2_grpc.add_MaintenanceServicer_to_server(MaintenanceService(server), grpc_server)
    rpc_pb2_grpc.add_ClusterServicer_to_server(ClusterService(server), grpc_server)
    rpc_pb2_grpc.add_WatchServicer_to_server(WatchService(server), grpc_server)  # chapter 8
    rpc_pb2_grpc.add_LeaseServicer_to_server(LeaseService(server), grpc_server)
    add_lock_election_services(grpc_server, own_client)  # chapter 9
    # etcd registers the standard health service too; some clients and balancers probe it.
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, grpc_server)
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    add_not_served_refusal(grpc_server)  # last: only RPCs no servicer claims (`unimplemented`)
