"""The client RPCs' counts (chapter 10): `RpcCounter` counts every call once, by method and by
the code it ended with, however many gRPC servers the handlers are registered on.

Each test registers a small service on real grpc.aio servers, each on a private socket, and
calls it through real channels, on asyncio's loop and on uvloop's (this folder's conftest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from kv.server.front import listen_privately
from kv.server.metrics.grpc_metrics import Handlers, RpcCounter

SAY = "/test.Echo/Say"
FAIL = "/test.Echo/Fail"


async def _say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _fail(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def _echo_handlers() -> Handlers:
    """The test service, registered as generated code registers a service: both ways."""
    handlers = Handlers()
    methods = {
        "Say": grpc.unary_unary_rpc_method_handler(_say),
        "Fail": grpc.unary_unary_rpc_method_handler(_fail),
    }
    server = handlers.as_server
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", methods),))
    server.add_registered_method_handlers("test.Echo", methods)
    return handlers


@asynccontextmanager
async def _servers(
    handlers: Handlers, counter: RpcCounter, count: int
) -> AsyncIterator[list[grpc.aio.Channel]]:
    """``count`` servers with ``handlers`` counted by ``counter``; a channel to each."""
    servers = [grpc.aio.server() for _ in range(count)]
    channels = []
    for server in servers:
        counter.register(handlers, server)
        address = listen_privately(server, "counts")
        await server.start()
        channels.append(grpc.aio.insecure_channel(f"unix-abstract:{address}"))
    try:
        yield channels
    finally:
        for channel in channels:
            await channel.close()
        for server in servers:
            await server.stop(None)


async def test_each_call_is_counted_once_whichever_server_takes_it() -> None:
    counter = RpcCounter(services=())
    async with _servers(_echo_handlers(), counter, 3) as channels:
        for i in range(7):
            assert await channels[i % 3].unary_unary(SAY)(b"hi") == b"hi"
    counts = counter.methods[SAY]
    assert (counts.type, counts.service, counts.method) == ("unary", "test.Echo", "Say")
    assert (counts.started, counts.received, counts.sent) == (7, 7, 7)
    assert counts.handled["OK"] == 7
    assert sum(counts.handled.values()) == 7


async def test_an_aborted_call_is_counted_with_its_code() -> None:
    counter = RpcCounter(services=())
    async with _servers(_echo_handlers(), counter, 2) as channels:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channels[1].unary_unary(FAIL)(b"hi")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    counts = counter.methods[FAIL]
    assert (counts.started, counts.received, counts.sent) == (1, 1, 0)
    assert counts.handled["NotFound"] == 1
    assert sum(counts.handled.values()) == 1


async def test_a_method_served_only_by_a_generic_handler_is_counted() -> None:
    handlers = Handlers()
    methods = {"Say": grpc.unary_unary_rpc_method_handler(_say)}
    handlers.as_server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Echo", methods),)
    )
    counter = RpcCounter(services=())
    async with _servers(handlers, counter, 2) as channels:
        for channel in channels:
            await channel.unary_unary(SAY)(b"hi")
    assert counter.methods[SAY].handled["OK"] == 2


def test_the_counted_services_start_at_zero_for_every_code() -> None:
    counts = RpcCounter().methods["/etcdserverpb.KV/Put"]
    assert (counts.started, counts.received, counts.sent) == (0, 0, 0)
    assert set(counts.handled.values()) == {0}
    assert "Canceled" in counts.handled
