"""etcd's gRPC services, answered by a `Node` (chapter 1).

Each servicer method is one line: hand the request to the node, and turn an `EtcdError` into
a gRPC status with etcd's code and message. RPCs not implemented yet answer UNIMPLEMENTED
(the generated base classes do that), and services not registered at all get gRPC's own
UNIMPLEMENTED, so a client learns what kv lacks instead of hanging or crashing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.server.errors import EtcdError
from kv.server.node import Node

Request = TypeVar("Request")
Response = TypeVar("Response")


async def _answer(
    context: grpc.aio.ServicerContext[Request, Response],
    handle: Callable[[Request], Response],
    request: Request,
) -> Response:
    try:
        return handle(request)
    except EtcdError as error:
        await context.abort(error.code, error.message)


class KVService(rpc_pb2_grpc.KVServicer):
    """etcdserverpb.KV: Range, Put, DeleteRange, Compact (Txn arrives in chapter 8)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def Range(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.node.range, request)

    async def Put(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.node.put, request)

    async def DeleteRange(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.node.delete_range, request)

    async def Compact(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.node.compact, request)


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    """etcdserverpb.Maintenance: Status, HashKV and listing alarms (the rest in chapter 2)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def Status(self, request, context):  # type: ignore[no-untyped-def]
        return self.node.status()

    async def HashKV(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self.node.hash_kv, request)

    async def Alarm(self, request, context):  # type: ignore[no-untyped-def]
        if request.action != rpc_pb2.AlarmRequest.GET:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "kv: alarms arrive in chapter 2")
        return self.node.alarms()


class ClusterService(rpc_pb2_grpc.ClusterServicer):
    """etcdserverpb.Cluster: MemberList (membership changes arrive with Raft)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def MemberList(self, request, context):  # type: ignore[no-untyped-def]
        return self.node.member_list()


async def add_services(server: grpc.aio.Server, node: Node) -> None:
    """Register every service kv answers on ``server``."""
    # The generated stubs declare every RPC abstract; at run time the base classes answer
    # UNIMPLEMENTED for the ones later chapters add, which is what we want until then.
    rpc_pb2_grpc.add_KVServicer_to_server(KVService(node), server)  # type: ignore[abstract]
    rpc_pb2_grpc.add_MaintenanceServicer_to_server(
        MaintenanceService(node),  # type: ignore[abstract]
        server,
    )
    rpc_pb2_grpc.add_ClusterServicer_to_server(ClusterService(node), server)  # type: ignore[abstract]
    # etcd registers the standard health service too; some clients and balancers probe it.
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
