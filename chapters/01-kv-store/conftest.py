"""Fixtures shared by chapter 1's server-side tests: free ports and an in-process kv server.

* `free_port` -- a loopback TCP port that was free a moment ago.
* `start_server` -- start `kv.server.app.serve` in this test's event loop with a chosen
  configuration; every server it started is stopped when the test ends.
* `kv_server` -- one such server with etcd's defaults on a free port; its ``host:port``.
* `client` -- a `KVClient` connected to `kv_server`.

The servers run in the same event loop as the test (pytest-asyncio), so a test needs no
subprocess and no sleeping: `serve` sets its ``ready`` event once it accepts requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kv.client import KVClient
from kv.server.app import serve
from kv.server.config import ServerConfig

#: How long a server may take to become ready before the test fails.
READY_TIMEOUT = 10.0

StartServer = Callable[..., Awaitable[str]]


def find_free_port() -> int:
    """A loopback port that was free a moment ago (the OS picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def free_port() -> int:
    """A free loopback port."""
    return find_free_port()


@pytest.fixture
async def start_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StartServer]:
    """``await start_server(**config_fields)`` starts a kv member; returns its ``host:port``.

    The member listens and advertises ``http://127.0.0.1:<free port>`` and keeps its data in
    a fresh temporary directory; keyword arguments override other `ServerConfig` fields
    (``max_request_bytes=...``, ``name=...``, ``data_dir=...``).
    """
    tasks: list[asyncio.Task[None]] = []

    async def start(**fields: Any) -> str:
        port = find_free_port()
        url = f"http://127.0.0.1:{port}"
        fields.setdefault("data_dir", str(tmp_path_factory.mktemp("member") / "data.etcd"))
        fields.setdefault("listen_client_urls", (url,))
        fields.setdefault("advertise_client_urls", (url,))
        config = ServerConfig(**fields)
        ready = asyncio.Event()
        task = asyncio.create_task(serve(config, ready=ready, handle_signals=False))
        tasks.append(task)
        ready_wait = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            {task, ready_wait}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        ready_wait.cancel()
        if task in done:
            task.result()  # serve() ended before it was ready: raise its error
        if not ready.is_set():
            raise TimeoutError(f"kv did not become ready on {url} within {READY_TIMEOUT}s")
        return f"127.0.0.1:{port}"

    yield start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def kv_server(start_server: StartServer) -> str:
    """A kv member with etcd's defaults, serving on a free loopback port: its ``host:port``."""
    return await start_server()


@pytest.fixture
async def client(kv_server: str) -> AsyncIterator[KVClient]:
    """A `KVClient` connected to `kv_server`."""
    async with KVClient(kv_server) as connected:
        yield connected
