"""`KVClient`'s Lease calls against a kv member in-process: grant, list, time-to-live with the
attached keys, revoke. (The attach TUI's lease test runs the same calls against etcd 3.4.)"""

from __future__ import annotations

from typing import Any

from kv.client import KVClient


async def test_a_granted_lease_is_listed_and_its_time_to_live_names_its_keys(
    client: KVClient,
) -> None:
    granted = await client.lease_grant(60)
    await client.put("held", "v", lease=granted.ID)
    listed = await client.lease_leases()
    assert [lease.ID for lease in listed.leases] == [granted.ID]
    alive = await client.lease_time_to_live(granted.ID, keys=True)
    assert alive.grantedTTL == 60
    assert 0 < alive.TTL <= 60
    assert list(alive.keys) == [b"held"]


async def test_time_to_live_without_keys_leaves_them_out(client: KVClient) -> None:
    granted = await client.lease_grant(60)
    await client.put("held", "v", lease=granted.ID)
    assert list((await client.lease_time_to_live(granted.ID)).keys) == []


async def test_a_lease_asked_for_by_its_id_gets_that_id(client: KVClient) -> None:
    assert (await client.lease_grant(60, lease_id=0x1234)).ID == 0x1234


async def test_a_revoked_lease_is_gone_with_its_keys(client: KVClient) -> None:
    granted = await client.lease_grant(60)
    await client.put("held", "v", lease=granted.ID)
    await client.lease_revoke(granted.ID)
    assert list((await client.lease_leases()).leases) == []
    assert (await client.lease_time_to_live(granted.ID)).TTL == -1
    assert await client.get("held") is None


async def test_the_minimum_ttl_follows_the_members_election_timeout(
    start_server: Any,
) -> None:
    """1.5 election timeouts of 500 ms, rounded up: 1 s, where etcd's defaults give 2 s."""
    endpoint = await start_server(heartbeat_interval=50, election_timeout=500)
    async with KVClient(endpoint) as client:
        assert (await client.lease_grant(1)).TTL == 1
