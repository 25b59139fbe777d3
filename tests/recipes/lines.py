"""Waiting for a contender to stand in line, for the recipe tests and the Lock and Election
differential tests (chapter 9).

A test that needs a second contender starts its call (a lock, a campaign) as a task, then polls
the store until the contender's key is in line: from then on the contender can only be
waiting, so checking that its task has not finished is a fact, not a race.
"""

from __future__ import annotations

import asyncio

from kv.client import KVClient, prefix_end

#: Seconds a test waits for something the cluster must do (a waiter's turn, a lease's end).
PATIENCE = 15.0


async def wait_for_line(client: KVClient, name: str, length: int) -> None:
    """Poll until ``length`` keys stand in the line ``name/``."""
    prefix = f"{name}/".encode()
    async with asyncio.timeout(PATIENCE):
        while (await client.range(prefix, prefix_end(prefix), count_only=True)).count != length:
            await asyncio.sleep(0.02)
