"""The election recipe (`kv.recipes.Election`) on a real kv member: one leader at a time, in
line; proclaim, resign, leader and observe as etcd's clientv3/concurrency defines them."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kv.client import KVClient
from kv.recipes import Election, Leader, NoLeaderError, NotLeaderError
from tests.recipes.lines import PATIENCE, wait_for_line
from tests.recipes.sessions import OpenSession


async def test_a_lone_candidate_leads_with_its_value(
    client: KVClient, open_session: OpenSession
) -> None:
    session = await open_session()
    election = Election(session, "scheduler")
    await election.campaign("n1")
    leader = await election.leader()
    assert election.leadership is not None
    assert leader.kv.key == election.leadership.key == f"scheduler/{session.lease_id:x}".encode()
    assert (leader.kv.value, leader.kv.create_revision) == (b"n1", election.leadership.revision)


async def test_nobody_leads_an_election_nobody_campaigned_in(
    client: KVClient, open_session: OpenSession
) -> None:
    with pytest.raises(NoLeaderError) as raised:
        await Election(await open_session(), "scheduler").leader()
    assert str(raised.value) == "election: no leader"


async def test_a_second_candidate_waits_until_the_leader_resigns(
    client: KVClient, open_session: OpenSession
) -> None:
    first = Election(await open_session(), "scheduler")
    await first.campaign("n1")
    second = Election(await open_session(), "scheduler")
    campaigning = asyncio.create_task(second.campaign("n2"))
    await wait_for_line(client, "scheduler", 2)
    assert not campaigning.done()
    await first.resign()
    await asyncio.wait_for(campaigning, PATIENCE)
    assert (await second.leader()).kv.value == b"n2"


async def test_the_leader_proclaims_a_new_value(
    client: KVClient, open_session: OpenSession
) -> None:
    election = Election(await open_session(), "scheduler")
    await election.campaign("n1")
    await election.proclaim("n1:9090")
    leader = await election.leader()
    assert (leader.kv.value, leader.kv.version) == (b"n1:9090", 2)
    assert election.header.revision == leader.kv.mod_revision


async def test_a_leader_whose_key_is_gone_cannot_proclaim(
    client: KVClient, open_session: OpenSession
) -> None:
    session = await open_session()
    election = Election(session, "scheduler")
    await election.campaign("n1")
    await client.lease_revoke(session.lease_id)  # as if its lease had expired
    with pytest.raises(NotLeaderError) as raised:
        await election.proclaim("still me?")
    assert str(raised.value) == "election: not leader"


async def test_resigning_without_leading_does_nothing(
    client: KVClient, open_session: OpenSession
) -> None:
    before = (await client.status()).header.revision
    await Election(await open_session(), "scheduler").resign()
    assert (await client.status()).header.revision == before


async def test_campaigning_again_with_another_value_proclaims_it(
    client: KVClient, open_session: OpenSession
) -> None:
    session = await open_session()
    await Election(session, "scheduler").campaign("n1")
    again = Election(session, "scheduler")
    await again.campaign("n1:9090")
    assert (await again.leader()).kv.value == b"n1:9090"


async def test_a_cancelled_candidate_leaves_the_line(
    client: KVClient, open_session: OpenSession
) -> None:
    await Election(await open_session(), "scheduler").campaign("n1")
    candidate = Election(await open_session(), "scheduler")
    campaigning = asyncio.create_task(candidate.campaign("n2"))
    await wait_for_line(client, "scheduler", 2)
    campaigning.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await campaigning
    await wait_for_line(client, "scheduler", 1)
    assert candidate.leadership is None


async def test_observe_follows_each_leader_and_each_proclaim_in_order(
    client: KVClient, open_session: OpenSession
) -> None:
    observer = Election(await open_session(), "scheduler").observe()
    seen: asyncio.Queue[Leader] = asyncio.Queue()

    async def observe() -> None:
        async for leader in observer:
            seen.put_nowait(leader)

    async def next_value() -> bytes:
        return (await asyncio.wait_for(seen.get(), PATIENCE)).kv.value

    observing = asyncio.create_task(observe())
    try:
        first = Election(await open_session(), "scheduler")
        await first.campaign("n1")  # the observer was waiting for a first leader
        assert await next_value() == b"n1"
        await first.proclaim("n1:9090")
        assert await next_value() == b"n1:9090"
        second = Election(await open_session(), "scheduler")
        campaigning = asyncio.create_task(second.campaign("n2"))
        await wait_for_line(client, "scheduler", 2)
        await first.resign()
        assert await next_value() == b"n2"
        await asyncio.wait_for(campaigning, PATIENCE)
        assert seen.empty()
    finally:
        observing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await observing
        await observer.aclose()
