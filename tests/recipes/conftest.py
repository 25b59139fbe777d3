"""Helpers for the recipe tests: sessions on a real kv member, and waiting for a waiter.

The member is the root conftest's in-process `kv_server` (its `client` fixture talks to it).
A test that needs a second contender starts its call as a task and waits, by polling the
store, until the contender's key is in line: from then on the contender can only be waiting,
so checking that its task has not finished is a fact, not a race.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kv.client import KVClient, prefix_end
from kv.recipes import Session

#: Seconds a test waits for something the cluster must do (a waiter's turn, a lease's end).
PATIENCE = 15.0

OpenSession = Callable[..., Awaitable[Session]]


@pytest.fixture
async def open_session(client: KVClient) -> AsyncIterator[OpenSession]:
    """``await open_session(ttl=...)``: a `Session` on the test's member, orphaned at the end
    (its lease is left to expire with the member)."""
    opened: list[Session] = []

    async def open_one(**options: int | bool) -> Session:
        session = await Session.open(client, **options)  # type: ignore[arg-type]
        opened.append(session)
        return session

    yield open_one
    for session in opened:
        session.orphan()


async def wait_for_line(client: KVClient, name: str, length: int) -> None:
    """Poll until ``length`` keys stand in the line ``name/``."""
    prefix = f"{name}/".encode()
    async with asyncio.timeout(PATIENCE):
        while (await client.range(prefix, prefix_end(prefix), count_only=True)).count != length:
            await asyncio.sleep(0.02)
