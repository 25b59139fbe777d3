"""The lock recipe (`kv.recipes.Mutex`) on a real kv member: one holder at a time, in the order
the sessions asked, and the failure cases its docstring promises."""

from __future__ import annotations

import asyncio

import pytest

from kv.client import KVClient, put_op
from kv.recipes import Mutex
from tests.recipes.lines import PATIENCE, wait_for_line
from tests.recipes.sessions import OpenSession


async def contended(
    client: KVClient, open_session: OpenSession
) -> tuple[Mutex, Mutex, asyncio.Task[None]]:
    """A holder of "printer", and a second session's lock waiting in line behind it."""
    holder = Mutex(await open_session(), "printer")
    await holder.lock()
    waiter = Mutex(await open_session(), "printer")
    waiting = asyncio.create_task(waiter.lock())
    await wait_for_line(client, "printer", 2)
    return holder, waiter, waiting


async def test_an_uncontended_lock_is_held_at_once_under_the_sessions_key(
    client: KVClient, open_session: OpenSession
) -> None:
    session = await open_session()
    mutex = Mutex(session, "printer")
    await mutex.lock()
    key = await client.get(mutex.key)
    assert mutex.key == f"printer/{session.lease_id:x}".encode()
    assert key is not None and key.lease == session.lease_id
    assert mutex.revision == key.create_revision == mutex.header.revision


async def test_a_second_locker_waits_until_the_holder_unlocks(
    client: KVClient, open_session: OpenSession
) -> None:
    holder, waiter, waiting = await contended(client, open_session)
    assert not waiting.done()
    released = await holder.unlock()
    await asyncio.wait_for(waiting, PATIENCE)
    assert waiter.header.revision == released.header.revision  # it holds from the release on


async def test_the_fencing_token_grows_with_each_holder(
    client: KVClient, open_session: OpenSession
) -> None:
    first = Mutex(await open_session(), "printer")
    await first.lock()
    await first.unlock()
    second = Mutex(await open_session(), "printer")
    await second.lock()
    assert second.revision > first.revision


async def test_a_holder_whose_lease_is_revoked_loses_the_lock_to_the_waiter(
    client: KVClient, open_session: OpenSession
) -> None:
    holder, _, waiting = await contended(client, open_session)
    await client.lease_revoke(holder.session.lease_id)
    await asyncio.wait_for(waiting, PATIENCE)
    assert (await client.get(holder.key)) is None


async def test_the_old_holders_guarded_write_fails_once_it_lost_the_lock(
    client: KVClient, open_session: OpenSession
) -> None:
    holder_session = await open_session()
    holder = Mutex(holder_session, "printer")
    await holder.lock()
    await client.lease_revoke(holder_session.lease_id)  # as if its lease had expired
    written = await client.txn([holder.is_owner()], [put_op("printer/job", "late")])
    assert not written.succeeded


async def test_a_cancelled_waiter_leaves_the_line(
    client: KVClient, open_session: OpenSession
) -> None:
    _, waiter, waiting = await contended(client, open_session)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await client.get(waiter.key)) is None


async def test_a_waiter_behind_one_who_gave_up_still_waits_for_the_holder(
    client: KVClient, open_session: OpenSession
) -> None:
    holder, _, quitter = await contended(client, open_session)
    last = Mutex(await open_session(), "printer")
    waiting = asyncio.create_task(last.lock())
    await wait_for_line(client, "printer", 3)
    quitter.cancel()  # the key `last` watches is deleted, but the holder is still there
    await wait_for_line(client, "printer", 2)
    assert not waiting.done()
    await holder.unlock()
    await asyncio.wait_for(waiting, PATIENCE)


async def test_locking_again_with_the_same_session_finds_the_same_key(
    client: KVClient, open_session: OpenSession
) -> None:
    session = await open_session()
    first, again = Mutex(session, "printer"), Mutex(session, "printer")
    await first.lock()
    await again.lock()
    assert (again.key, again.revision) == (first.key, first.revision)
