"""The client URLs' front: gRPC and HTTP/1.1 on one port, as etcd's cmux does (chapter 10).

etcd answers ``curl http://127.0.0.1:2379/health`` and its gRPC clients on the same port: a
multiplexer (``cmux``) reads the first bytes of each connection and hands it to the gRPC
server or to the HTTP one. grpcio's server cannot share its port, so kv does the same in
front of it: the gRPC server listens on a private loopback port, and the front listens on
each ``--listen-client-urls`` address and looks at each new connection's first bytes.

* A gRPC client opens with HTTP/2's connection preface, ``PRI * HTTP/2.0``: the connection
  is spliced to the gRPC server, byte for byte in both directions (`Splice`), and the front
  takes no further interest in it.
* Anything else is HTTP/1.1 (curl, Prometheus, a load balancer's health check), answered
  by `kv.server.http.listener.serve_connection` with the client URLs' `Routes`
  (``/metrics``, ``/health``, ``/version``).

The splice costs kv a copy of every byte through the event loop; `Splice` keeps it to one
callback per chunk, with the transports' own buffers and flow control (a side whose peer
cannot take more is paused, as asyncio's ``pause_writing`` asks).
"""

from __future__ import annotations

import asyncio
import logging
import socket

from kv.server.http.listener import MAX_HEAD_BYTES, serve_connection
from kv.server.http.routes import Routes

log = logging.getLogger(__name__)

#: Every gRPC (HTTP/2) connection starts with these bytes (RFC 9113 §3.4).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Bytes enough to tell the preface from an HTTP/1.1 request line ("GET ", "POST"...).
SNIFF_BYTES = 3


class Splice(asyncio.Protocol):
    """One direction's receiver of a spliced connection: what its transport receives is
    written to the peer's transport."""

    def __init__(self, peer: asyncio.Transport, keep: object = None) -> None:
        self.peer = peer
        # asyncio's StreamWriter closes its transport when it is collected (Python 3.11):
        # the client's, which accepted the connection, must live as long as the splice.
        self._keep = keep

    def data_received(self, data: bytes) -> None:
        self.peer.write(data)

    def eof_received(self) -> bool:
        if self.peer.can_write_eof():
            self.peer.write_eof()  # a half-close travels on
            return True  # keep our side open for the peer's answer
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer.close()

    # Our transport's write buffer is full: stop reading what would go into it.
    def pause_writing(self) -> None:
        self.peer.pause_reading()

    def resume_writing(self) -> None:
        self.peer.resume_reading()


async def start_front(host: str, port: int, grpc_port: int, routes: Routes) -> asyncio.Server:
    """Listen on ``host:port``, not serving until the returned server's ``start_serving``:
    gRPC connections go to ``127.0.0.1:grpc_port``, the others to ``routes``.

    Raises:
        OSError: the address cannot be bound (in use, say).
    """

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await _first_bytes(reader)
        except ConnectionError:
            writer.close()
            return
        if first.startswith(HTTP2_PREFACE[:SNIFF_BYTES]):
            await _splice(writer, first, grpc_port)
        else:
            # Nothing was awaited since the read took the whole buffer: feeding the bytes
            # back puts them first, where the HTTP server reads its request line.
            reader.feed_data(first)
            await serve_connection(routes, reader, writer)

    return await asyncio.start_server(
        connected,
        host,
        port,
        limit=MAX_HEAD_BYTES,
        reuse_address=True,
        backlog=socket.SOMAXCONN,  # as Go's listener (and gRPC's) ask for
        start_serving=False,
    )


async def _first_bytes(reader: asyncio.StreamReader) -> bytes:
    """At least `SNIFF_BYTES` bytes, or all there is before the client hangs up."""
    first = b""
    while len(first) < SNIFF_BYTES:
        chunk = await reader.read(MAX_HEAD_BYTES)  # everything buffered, at least one byte
        if not chunk:
            break
        first += chunk
    return first


async def _splice(client: asyncio.StreamWriter, first: bytes, grpc_port: int) -> None:
    """Hand the client's connection over to a new connection to the gRPC server."""
    loop = asyncio.get_running_loop()
    client_transport = client.transport
    assert isinstance(client_transport, asyncio.Transport)
    # What the client sends while the connection to the gRPC server opens must not land in
    # the stream reader, which is about to be left behind: hold it in the socket meanwhile.
    client_transport.pause_reading()
    try:
        grpc_transport, _ = await loop.create_connection(
            lambda: Splice(client_transport), "127.0.0.1", grpc_port
        )
    except OSError as error:
        log.warning("cannot reach the gRPC server: %s", error)
        client.close()
        return
    # From here on the client's bytes go to the gRPC server without the stream reader.
    client_transport.set_protocol(Splice(grpc_transport, keep=client))
    grpc_transport.write(first)
    client_transport.resume_reading()
