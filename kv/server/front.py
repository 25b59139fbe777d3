"""A member's front: one port, several protocols, told apart by a connection's first bytes
(chapter 10).

etcd answers ``curl http://127.0.0.1:2379/health`` and its gRPC clients on the same port: a
multiplexer (``cmux``) reads the first bytes of each new connection and hands it to the gRPC
server or to the HTTP one. grpcio's server cannot share its port, so kv puts the same thing
in front of it: each gRPC server listens on a private socket (`listen_privately`: a Unix
socket in Linux's abstract namespace, so it takes no TCP port and leaves no file behind),
and the front listens on the member's URL and looks at each new connection's first bytes:

* HTTP/2's connection preface, ``PRI * HTTP/2.0``, is a gRPC client: the connection is
  spliced to a gRPC server, byte for byte in both directions (`Splice`), and the front
  takes no further interest in it. A front may stand before several gRPC servers, each on
  its own private socket: it deals the connections to them in turn;
* a `Route`'s magic bytes (kv's own framed protocols, such as the peers' Raft stream) hand
  the connection to that route's protocol;
* anything else is HTTP/1.1 (curl, Prometheus, a load balancer's health check), answered by
  `kv.server.http.listener.serve_connection` with the front's `Routes`, if it has any.

Everything here is an `asyncio.Protocol` driven by the event loop's callbacks: no task waits
on a socket, so nothing can be lost while it waits. The one wait, for the connection to the
gRPC server, is a task the front holds until it ends. The splice costs a callback and a copy
per chunk; etcd 3.5.8 added ``--listen-client-http-urls`` to take HTTP off the client URLs
for that cost (etcd issue #15402), and kv takes that flag too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import grpc

from kv.server.http.listener import MAX_HEAD_BYTES, serve_connection
from kv.server.http.routes import Routes

log = logging.getLogger(__name__)

#: Every gRPC (HTTP/2) connection starts with these bytes (RFC 9113 §3.4).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Route:
    """A protocol of kv's own on a front's port: a connection that opens with ``magic`` is
    handed to a new ``protocol()`` (its ``connection_made``, then ``data_received`` with every
    byte read so far, ``magic`` included)."""

    magic: bytes
    protocol: Callable[[], asyncio.Protocol]


class Splice(asyncio.Protocol):
    """One side of a spliced connection: what its transport receives is written to the peer's
    transport, with the transports' own buffers and flow control (a side whose peer cannot
    take more stops reading, as asyncio's ``pause_writing`` asks)."""

    def __init__(self, peer: asyncio.Transport) -> None:
        self.peer = peer

    def data_received(self, data: bytes) -> None:
        # The peer's close reaches this side a moment after the peer's connection was lost:
        # what is read meanwhile has nowhere to go (and uvloop raises on such a write).
        if not self.peer.is_closing():
            self.peer.write(data)

    def eof_received(self) -> bool:
        # A side that ends its half is done with the connection: HTTP/2 has no use for a
        # half-closed one, and Go's HTTP/2 server (etcd's) closes on EOF too. So the other
        # side is closed, once what it was sent is written, and then this one. Passing the
        # half-close on with ``write_eof`` instead crashed kv serve under uvloop: a stream
        # closed while its shutdown request was pending was freed twice (uvloop's
        # ``__uv_stream_on_shutdown``, "double free or corruption" in a core dump).
        self.peer.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer.close()

    def pause_writing(self) -> None:
        self.peer.pause_reading()

    def resume_writing(self) -> None:
        self.peer.resume_reading()


@dataclass(slots=True)
class _Targets:
    """Where a front sends what it recognises, and the waits it holds (see `_Sniffer`)."""

    grpc_addresses: Sequence[str]
    routes: Sequence[Route]
    http: Routes | None
    pending: set[asyncio.Task[None]]
    #: How many gRPC connections were dealt: the next goes to the next address.
    dealt: int = 0

    def next_grpc_address(self) -> str:
        """Where the next gRPC connection goes: each server in turn."""
        address = self.grpc_addresses[self.dealt % len(self.grpc_addresses)]
        self.dealt += 1
        return address

    def hold(self, task: asyncio.Task[None]) -> None:
        """Keep ``task`` referenced until it ends: the event loop holds tasks only weakly."""
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


class _Sniffer(asyncio.Protocol):
    """A new connection's first protocol: it reads until the first bytes say what the
    connection is, then hands the transport over and steps aside."""

    def __init__(self, targets: _Targets) -> None:
        self.targets = targets
        self.transport: asyncio.Transport | None = None
        self.first = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio's, so no isinstance).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.first += data
        self._route(complete=False)

    def eof_received(self) -> bool:
        self._route(complete=True)  # whatever came before the half-close decides
        return True

    def _route(self, *, complete: bool) -> None:
        assert self.transport is not None
        first, transport = self.first, self.transport
        if _matches(first, HTTP2_PREFACE, complete):
            self._hand_over()
            self.targets.hold(
                asyncio.ensure_future(_splice_to_grpc(transport, first, self.targets))
            )
            return
        for route in self.targets.routes:
            if _matches(first, route.magic, complete):
                self._hand_over()
                _switch(transport, route.protocol(), first)
                return
        if any(_could_be(first, magic) for magic in self._magics()) and not complete:
            return  # too few bytes yet to tell
        self._hand_over()
        if self.targets.http is None:
            transport.close()
        else:
            serving = _serve_http(transport, first, self.targets.http, eof=complete)
            self.targets.hold(asyncio.ensure_future(serving))

    def _magics(self) -> list[bytes]:
        return [HTTP2_PREFACE, *(route.magic for route in self.targets.routes)]

    def _hand_over(self) -> None:
        """From here on this connection is someone else's."""
        self.transport = None
        self.first = b""


def _matches(first: bytes, magic: bytes, complete: bool) -> bool:
    return first.startswith(magic) or (complete and bool(first) and magic.startswith(first))


def _could_be(first: bytes, magic: bytes) -> bool:
    return len(first) < len(magic) and magic.startswith(first)


def _switch(transport: asyncio.Transport, protocol: asyncio.Protocol, first: bytes) -> None:
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    if first:
        protocol.data_received(first)


async def _splice_to_grpc(client: asyncio.Transport, first: bytes, targets: _Targets) -> None:
    """Connect to the next gRPC server and splice ``client`` to it, ``first`` going first."""
    # What the client sends meanwhile stays in its socket, in order, until the splice is set.
    client.pause_reading()
    loop = asyncio.get_running_loop()
    try:
        grpc_side, _ = await loop.create_unix_connection(
            lambda: Splice(client), sock=_connected(targets.next_grpc_address())
        )
    except OSError as error:
        log.warning("cannot reach the gRPC server behind the front: %s", error)
        client.close()
        return
    if client.is_closing():  # the client left while we connected
        grpc_side.close()
        return
    grpc_side.write(first)
    client.set_protocol(Splice(grpc_side))
    client.resume_reading()


def _connected(name: str) -> socket.socket:
    """A socket connected to the abstract Unix socket ``name``. A local connect completes at
    once (it waits only while the listener's backlog is full), and uvloop takes no abstract
    path itself, only a connected socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect("\0" + name)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listen_privately(server: grpc.aio.Server, label: str) -> str:
    """Bind ``server`` to a new private socket, reachable only from this machine, and return
    its name for `start_front`'s ``grpc_addresses``."""
    name = f"kv-{label}-{os.getpid()}-{secrets.token_hex(8)}"
    server.add_insecure_port(f"unix-abstract:{name}")
    return name


async def _serve_http(
    transport: asyncio.Transport, first: bytes, routes: Routes, *, eof: bool
) -> None:
    """Serve ``transport`` as an HTTP/1.1 connection whose first bytes were ``first`` (and
    whose client has half-closed it, if ``eof``)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    _switch(transport, protocol, b"")
    reader.feed_data(first)
    if eof:
        reader.feed_eof()
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    await serve_connection(routes, reader, writer)


async def start_front(
    host: str,
    port: int,
    *,
    grpc_addresses: Sequence[str],
    routes: Sequence[Route] = (),
    http: Routes | None = None,
    start_serving: bool = True,
) -> asyncio.Server:
    """Listen on ``host:port`` (serving from now, or from the returned server's
    ``start_serving``): gRPC to the private sockets ``grpc_addresses`` (`listen_privately`),
    each new connection to the next in turn; kv's own protocols to ``routes``; HTTP/1.1 to
    ``http`` (closed if ``None``).

    Raises:
        OSError: the address cannot be bound (in use, say).
        ValueError: ``grpc_addresses`` is empty.
    """
    if not grpc_addresses:
        raise ValueError("a front needs a gRPC server to send gRPC connections to")
    targets = _Targets(
        grpc_addresses=tuple(grpc_addresses), routes=tuple(routes), http=http, pending=set()
    )
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _Sniffer(targets),
        host,
        port,
        reuse_address=True,
        backlog=socket.SOMAXCONN,  # as Go's listener (and gRPC's) ask for
        start_serving=start_serving,
    )
