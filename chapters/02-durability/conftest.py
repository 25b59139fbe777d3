"""Chapter 2's fixture: a member that a test can stop and start again from its data directory.

The server fixtures themselves (`start_server`, `kv_server`, `client`, `free_port`) are the
root ``conftest.py``'s, shared by every chapter; this adds only what durability tests need.

* `make_member` -- ``await make_member(**config_fields)`` starts a kv member in a data
  directory of its own and returns a `Member`: ``member.client()``, ``await member.restart()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kv.client import KVClient


class Member:
    """One kv member and its data directory; stopping it keeps the directory."""

    def __init__(self, start_server: Any, data_dir: Path, fields: dict[str, Any]) -> None:
        self._start_server = start_server  # the root conftest's ServerStarter
        self.data_dir = data_dir
        self.fields = fields
        self.endpoint = ""

    async def start(self) -> str:
        """Start serving from the data directory (a new port each time); the endpoint."""
        self.endpoint = await self._start_server(data_dir=str(self.data_dir), **self.fields)
        return self.endpoint

    async def stop(self) -> None:
        """Stop as SIGTERM would."""
        await self._start_server.stop(self.endpoint)

    async def restart(self) -> str:
        await self.stop()
        return await self.start()

    def client(self) -> KVClient:
        """A new client of the member (use ``async with``); a restart needs a new one."""
        return KVClient(self.endpoint)


MakeMember = Callable[..., Awaitable[Member]]


@pytest.fixture
def make_member(start_server: Any, tmp_path: Path) -> MakeMember:
    """``await make_member(**config_fields)``: a started `Member` in a fresh data directory."""
    count = 0

    async def make(**fields: Any) -> Member:
        nonlocal count
        count += 1
        member = Member(start_server, tmp_path / f"member-{count}.etcd", fields)
        await member.start()
        return member

    return make
