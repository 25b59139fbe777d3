"""Test setup shared by every suite: the Hypothesis seed of a failed run, and kv servers.

Hypothesis prints the seed of a run only when a failure is flaky or the run stopped early. For
an ordinary failure we add it to the report, so that ``pytest --hypothesis-seed=N`` replays the
whole run (the printed falsifying example and ``@reproduce_failure`` replay the single case).

The server fixtures, for every chapter's server-side tests:

* `free_port` -- a loopback TCP port that was free a moment ago; `free_ports` -- ``free_ports(n)``
  gives ``n`` distinct ones.
* `start_server` -- start `kv.server.app.serve` in this test's event loop with a chosen
  configuration (``await start_server(**fields)``); ``await start_server.stop(endpoint)``
  stops one, keeping its data directory. Every server still running is stopped when the
  test ends.
* `kv_server` -- one such server with etcd's defaults on a free port; its ``host:port``.
* `client` -- a `KVClient` connected to `kv_server`.

The servers run in the same event loop as the test (pytest-asyncio), so a test needs no
subprocess and no sleeping: `serve` sets its ``ready`` event once it accepts requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import pytest

from kv.client import KVClient
from kv.server.app import serve
from kv.server.config import ServerConfig

#: How long a server may take to become ready before the test fails.
READY_TIMEOUT = 10.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        # Set by @given when Hypothesis chose the seed itself (None under --hypothesis-seed).
        seed = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_generated_seed", None)
        if seed is not None:
            report.sections.append(
                ("hypothesis seed", f"replay this run with: pytest --hypothesis-seed={seed}")
            )
    return report


def find_free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago.

    The OS picks them (bind to port 0); the probes stay bound until all are picked, so no
    two are the same. Never etcd's fixed 2379/2380: a reader's ``kv serve`` may hold them.
    """
    with contextlib.ExitStack() as probes:
        ports: list[int] = []
        for _ in range(count):
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
        return ports


def find_free_port() -> int:
    """A loopback port that was free a moment ago."""
    return find_free_ports(1)[0]


@pytest.fixture
def free_port() -> int:
    """A free loopback port."""
    return find_free_port()


@pytest.fixture
def free_ports() -> Callable[[int], list[int]]:
    """``free_ports(n)``: ``n`` distinct free loopback ports (for a process's client and peer
    ports: every server a test starts takes free ones for both)."""
    return find_free_ports


class ServerStarter:
    """The `start_server` fixture: starts kv members in the test's event loop, stops them."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def __call__(self, **fields: Any) -> str:
        """Start a kv member; return its ``host:port``.

        The member listens and advertises ``http://127.0.0.1:<free port>`` for clients and
        another free port for peers, and keeps its data in a fresh temporary directory;
        keyword arguments override other `ServerConfig` fields (``max_request_bytes=...``,
        ``name=...``, ``data_dir=...``).
        """
        port, peer_port = find_free_ports(2)
        url = f"http://127.0.0.1:{port}"
        fields.setdefault("data_dir", str(self._tmp_path_factory.mktemp("member") / "data.etcd"))
        fields.setdefault("listen_client_urls", (url,))
        fields.setdefault("advertise_client_urls", (url,))
        if "listen_peer_urls" not in fields:  # a member listens for peers too (chapter 4)
            peer_url = f"http://127.0.0.1:{peer_port}"
            fields["listen_peer_urls"] = (peer_url,)
            if "initial_advertise_peer_urls" not in fields:
                fields["initial_advertise_peer_urls"] = (peer_url,)
                fields.setdefault("initial_cluster", f"{fields.get('name', 'default')}={peer_url}")
        config = ServerConfig(**fields)
        ready = asyncio.Event()
        task = asyncio.create_task(serve(config, ready=ready, handle_signals=False))
        endpoint = f"127.0.0.1:{port}"
        self._tasks[endpoint] = task
        ready_wait = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            {task, ready_wait}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        ready_wait.cancel()
        if task in done:
            task.result()  # serve() ended before it was ready: raise its error
        if not ready.is_set():
            raise TimeoutError(f"kv did not become ready on {url} within {READY_TIMEOUT}s")
        return endpoint

    async def stop(self, endpoint: str) -> None:
        """Stop the member serving ``endpoint`` as SIGTERM would; its data directory stays."""
        task = self._tasks.pop(endpoint)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_all(self) -> None:
        for endpoint in list(self._tasks):
            await self.stop(endpoint)


@pytest.fixture
async def start_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerStarter]:
    """``await start_server(**config_fields)`` starts a kv member; returns its ``host:port``."""
    starter = ServerStarter(tmp_path_factory)
    yield starter
    await starter.stop_all()


@pytest.fixture
async def kv_server(start_server: ServerStarter) -> str:
    """A kv member with etcd's defaults, serving on a free loopback port: its ``host:port``."""
    return await start_server()


@pytest.fixture
async def client(kv_server: str) -> AsyncIterator[KVClient]:
    """A `KVClient` connected to `kv_server`."""
    async with KVClient(kv_server) as connected:
        yield connected
