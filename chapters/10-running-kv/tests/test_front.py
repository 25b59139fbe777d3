"""The front (chapter 10): one port, told apart by each connection's first bytes.

Each test starts a front on a free loopback port in front of a real grpc.aio server and a
real HTTP route table, then talks to it as clients do: a gRPC channel, raw HTTP/1.1, kv's
own framed protocols, and connections that hang up early. Each runs on asyncio's own event
loop and on uvloop, which ``kv serve`` runs on (this folder's conftest).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import grpc
import pytest

from kv.server.front import HTTP2_PREFACE, Route, Splice, listen_privately, start_front
from kv.server.http.routes import Response

pytestmark = pytest.mark.asyncio

ECHO = "/test.Echo/Say"


class StaticRoutes:
    """Answers every GET with its path (the front only needs ``answer``)."""

    async def answer(self, method: str, target: str) -> Response:
        return Response(200, f"{method} {target}".encode(), (("Content-Type", "text/plain"),))


class Recorder(asyncio.Protocol):
    """A framed protocol of our own: records what it is handed and echoes it back."""

    def __init__(self, received: list[bytes]) -> None:
        self.received = received
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        cast(asyncio.Transport, self.transport).write(data)


@dataclass
class Front:
    port: int
    framed: list[bytes]


def _echo_server(name: bytes) -> grpc.aio.Server:
    """A gRPC server whose one method answers ``name``, a space, and the request."""
    grpc_server = grpc.aio.server()

    async def say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return name + b" " + request

    handler = grpc.unary_unary_rpc_method_handler(say)
    grpc_server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Echo", {"Say": handler}),)
    )
    return grpc_server


@asynccontextmanager
async def _front_before(grpc_servers: list[grpc.aio.Server]) -> AsyncIterator[Front]:
    """A front on a free port before ``grpc_servers``, with a framed route and HTTP routes."""
    grpc_addresses = [listen_privately(each, "test") for each in grpc_servers]
    for each in grpc_servers:
        await each.start()
    framed: list[bytes] = []
    server = await start_front(
        "127.0.0.1",
        0,
        grpc_addresses=grpc_addresses,
        routes=[Route(b"KVTEST\n", lambda: Recorder(framed))],
        http=StaticRoutes(),  # type: ignore[arg-type]
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield Front(port, framed)
    finally:
        server.close()
        for each in grpc_servers:
            await each.stop(None)


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async with _front_before([_echo_server(b"echo")]) as front:
        yield front


async def _exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if half_close:
        writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def test_a_grpc_client_is_spliced_to_the_grpc_server(front: Front) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel:
        say = channel.unary_unary(ECHO)
        assert await say(b"hello") == b"echo hello"


async def test_many_grpc_calls_on_many_connections_are_all_answered(front: Front) -> None:
    channels = [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{front.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(20)
    ]
    try:
        calls = [channel.unary_unary(ECHO)(str(i).encode()) for i, channel in enumerate(channels)]
        answers = await asyncio.wait_for(asyncio.gather(*calls), timeout=20)
    finally:
        for channel in channels:
            await channel.close()
    assert answers == [b"echo %d" % i for i in range(20)]


async def test_grpc_connections_are_dealt_to_the_grpc_servers_in_turn() -> None:
    names = [b"first", b"second", b"third"]
    async with _front_before([_echo_server(name) for name in names]) as front:
        answers = []
        for i in range(7):  # one connection each, one after the other
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{front.port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                answers.append(await channel.unary_unary(ECHO)(b"%d" % i))
    assert answers == [b"%s %d" % (names[i % 3], i) for i in range(7)]


async def test_every_call_on_one_connection_goes_to_the_same_grpc_server() -> None:
    grpc_servers = [_echo_server(b"first"), _echo_server(b"second")]
    async with (
        _front_before(grpc_servers) as front,
        grpc.aio.insecure_channel(f"127.0.0.1:{front.port}") as channel,
    ):
        say = channel.unary_unary(ECHO)
        answers = [await say(b"%d" % i) for i in range(5)]
    assert answers == [b"first %d" % i for i in range(5)]


async def test_a_front_needs_a_grpc_server() -> None:
    with pytest.raises(ValueError, match="needs a gRPC server"):
        await start_front("127.0.0.1", 0, grpc_addresses=[])


async def test_an_http_request_is_answered_by_the_routes(front: Front) -> None:
    answer = await _exchange(
        front.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nGET /health")


async def test_an_http_request_arriving_a_byte_at_a_time_is_answered(front: Front) -> None:
    # "P" could still be gRPC's preface ("PRI * ..."): the front waits for the next byte.
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        for byte in b"POST /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    assert answer.endswith(b"POST /health")


async def test_a_connection_opening_with_a_routes_magic_goes_to_its_protocol(
    front: Front,
) -> None:
    answer = await _exchange(front.port, b"KVTEST\nframes", half_close=True)
    assert b"".join(front.framed) == b"KVTEST\nframes"
    assert answer == b"KVTEST\nframes"


async def test_a_magic_split_over_two_writes_still_routes(front: Front) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        writer.write(b"KVT")
        await writer.drain()
        await asyncio.sleep(0.05)  # let the first bytes arrive alone (the test holds either way)
        writer.write(b"EST\nrest")
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    assert answer == b"KVTEST\nrest"


async def test_a_connection_closed_before_a_byte_leaves_the_front_serving(front: Front) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", front.port)
    writer.close()
    _, writer = await asyncio.open_connection("127.0.0.1", front.port)
    writer.write(HTTP2_PREFACE[:5])  # half a preface, then gone
    writer.close()
    await test_a_grpc_client_is_spliced_to_the_grpc_server(front)


@asynccontextmanager
async def a_connection() -> AsyncIterator[asyncio.Transport]:
    """One end of a real loopback connection (the other end, a listener's, does nothing),
    to hand a `Splice` as its peer; closed afterwards."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    try:
        yield transport
    finally:
        transport.close()
        server.close()


async def test_a_splice_whose_other_side_is_gone_takes_what_still_arrives() -> None:
    """One side of a splice can still read after the other side's connection was lost (its
    close reaches this side a moment later): what it reads then goes nowhere, without the
    error uvloop raises for a write to a closed transport."""
    async with a_connection() as gone:
        gone.close()
        Splice(gone).data_received(b"late bytes")


async def test_a_side_that_ends_its_half_of_a_splice_closes_both() -> None:
    """HTTP/2 has no use for a half-closed connection (Go's server, etcd's, closes on EOF),
    so an EOF closes the other side once its writes are out, and then this one. Passing the
    half-close on (``write_eof``) crashed uvloop: a stream closed while its shutdown was
    pending was freed twice, in about one ``kv serve`` start and stop in twelve under load."""
    async with a_connection() as other:
        keep_open = Splice(other).eof_received()
        assert not keep_open
        assert other.is_closing()
