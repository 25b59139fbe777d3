"""Sessions (`kv.recipes.Session`) on a real kv member: a lease kept alive past its TTL, revoked
on close, and a session that notices its lease is gone."""

from __future__ import annotations

import asyncio

from kv.client import KVClient
from kv.recipes import Session
from tests.recipes.lines import PATIENCE
from tests.recipes.sessions import OpenSession


async def test_a_session_keeps_its_lease_alive_past_the_ttl(
    client: KVClient, open_session: OpenSession
) -> None:
    session = await open_session(ttl=2)
    await client.put("held", "yes", lease=session.lease_id)
    # Longer than the TTL: without renewals the lease would have expired by now.
    await asyncio.sleep(3.5)
    assert (await client.lease_time_to_live(session.lease_id)).TTL > 0
    assert await client.get("held") is not None
    assert not session.done.is_set()


async def test_closing_a_session_revokes_its_lease_and_keys(client: KVClient) -> None:
    async with await Session.open(client, ttl=10) as session:
        await client.put("held", "yes", lease=session.lease_id)
    assert await client.get("held") is None
    assert (await client.lease_time_to_live(session.lease_id)).TTL == -1


async def test_a_session_whose_lease_is_revoked_is_done(
    client: KVClient, open_session: OpenSession
) -> None:
    session = await open_session(ttl=3)  # renewed every second
    await client.lease_revoke(session.lease_id)
    await asyncio.wait_for(session.done.wait(), PATIENCE)


async def test_a_session_over_a_given_lease_uses_it(
    client: KVClient, open_session: OpenSession
) -> None:
    granted = await client.lease_grant(30)
    session = await open_session(lease_id=granted.ID, keep_alive=False)
    assert session.lease_id == granted.ID
    assert (await client.lease_leases()).leases[0].ID == granted.ID  # no second lease
