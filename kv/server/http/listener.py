"""A small HTTP/1.1 server for a member's `Routes` (chapter 10).

Prometheus, curl and load balancers' health checks send short GET requests; this serves
them on asyncio streams, with keep-alive (Prometheus reuses its connection between
scrapes), and nothing more: no request bodies are read beyond their ``Content-Length``, no
chunked uploads, no TLS. `serve_connection` serves one accepted connection; `start_http`
listens on a ``--listen-metrics-urls`` or ``--listen-client-http-urls`` URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
from http import HTTPStatus

from kv.server.flag_values import socket_address
from kv.server.http.routes import Response, Routes

log = logging.getLogger(__name__)

#: The longest request head (request line and headers) accepted, as Go's default 1 MB.
MAX_HEAD_BYTES = 1 << 20
#: An idle keep-alive connection is closed after this long.
IDLE_SECONDS = 120.0


async def serve_connection(
    routes: Routes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Answer requests on one connection until the client closes it or asks to."""
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            parts = request_line.split(" ")
            if len(parts) != 3:
                writer.write(_encode(Response(400, b"400 Bad Request"), keep_alive=False))
                return
            method, target, version = parts
            headers = _headers(header_lines)
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            keep_alive = _keeps_alive(version, headers)
            response = await routes.answer(method, target)
            writer.write(_encode(response, keep_alive=keep_alive, head_only=method == "HEAD"))
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, ValueError) as error:
        log.debug("http connection ended: %s", error)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _headers(lines: list[str]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def _keeps_alive(version: str, headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def _encode(response: Response, *, keep_alive: bool, head_only: bool = False) -> bytes:
    """The response as bytes: status line, headers as Go orders them, then the body."""
    reason = HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    lines.append(f"Content-Length: {len(response.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


async def start_http(routes: Routes, url: str, *, start_serving: bool = True) -> asyncio.Server:
    """Listen on ``url`` (``http://host:port``) and serve `routes` on every connection (from
    now, or from the returned server's ``start_serving``).

    Raises:
        OSError: the address cannot be bound (in use, say).
    """
    host, port = socket_address(url)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(routes, reader, writer)

    return await asyncio.start_server(
        connected,
        host,
        port,
        limit=MAX_HEAD_BYTES,
        reuse_address=True,
        start_serving=start_serving,
    )
