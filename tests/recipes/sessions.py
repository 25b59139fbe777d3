"""Sessions on a real kv member for chapter 9's recipe tests: the `open_session` fixture,
which chapter 9's conftest makes available to its tests.

The member is the root conftest's in-process `kv_server` (its `client` fixture talks to it).
A test that needs a second contender starts its call as a task and waits until the
contender's key is in line (`tests.recipes.lines.wait_for_line`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kv.client import KVClient
from kv.recipes import Session

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
