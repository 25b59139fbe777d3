"""What the attach-mode pilot tests share: waiting on the app's state with a deadline.

Nothing sleeps for correctness: `until` lets the app run (``pilot.pause``) and checks a
condition on its state again, and fails with what it last saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from textual.pilot import Pilot
from textual.widgets import OptionList

from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.cluster.processes import WaitTimeout, wait_for
from tui.attach import AttachApp
from tui.attach.leaselist import LeaseList
from tui.attach.model import MemberRow, Role
from tui.attach.watchfeed import WatchFeed

T = TypeVar("T")

#: How long a change on a real cluster (an election, a restart) may take to show.
DEADLINE = 30.0
#: Writes before and after the kill in `feed_across_a_kill`.
WRITES = 10
#: Polls of the app in tests: fast, so a change shows in well under a second.
POLL_INTERVAL = 0.1


async def until(
    pilot: Pilot[None], check: Callable[[], T | None], what: str, timeout: float = DEADLINE
) -> T:
    """Let the app run (``pilot.pause``) until ``check()`` is neither None nor False; return
    it. A timeout says what the members table showed last."""

    async def probe() -> T | None:
        await pilot.pause(0.05)
        result = check()
        return None if result is False else result

    try:
        return await wait_for(probe, what, timeout)
    except WaitTimeout as timeout_error:
        app = pilot.app
        if isinstance(app, AttachApp):
            shown = [(r.name, r.role.value, r.error) for r in app.rows]
            raise WaitTimeout(f"{timeout_error}; members shown: {shown}") from None
        raise


def row(app: AttachApp, name: str) -> MemberRow | None:
    return next((r for r in app.rows if r.name == name), None)


def roles(app: AttachApp) -> dict[str, Role]:
    return {r.name: r.role for r in app.rows}


def one_leader(app: AttachApp) -> MemberRow | None:
    """The leader, once every member answers and exactly one says it leads."""
    if not app.rows or not all(r.up for r in app.rows):
        return None
    leaders = [r for r in app.rows if r.role is Role.LEADER]
    return leaders[0] if len(leaders) == 1 else None


async def choose(pilot: Pilot[None], name: str) -> None:
    """In an open member chooser, pick ``name``."""
    options = pilot.app.screen.query_one(OptionList)
    index = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == name
    )
    options.highlighted = index
    await pilot.press("enter")


async def put_somewhere(endpoints: list[str], key: str) -> int:
    """Put ``key`` through the first member that takes it (retrying while one is elected);
    its revision."""
    for attempt in range(200):
        try:
            async with KVClient(endpoints[attempt % len(endpoints)], timeout=2.0) as client:
                return (await client.put(key, key)).header.revision
        except EtcdError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"no member took {key}")


async def history(endpoint: str, start: int, last: int) -> list[tuple[int, bytes]]:
    """(revision, key) of every event from ``start`` to ``last``, read by a watch of its own."""
    async with KVClient(endpoint) as client:
        watch, events = client.watch(b"\0", b"\0", start_revision=start), []
        async for reply in watch:
            events += [(e.kv.mod_revision, e.kv.key) for e in reply.events]
            if events and events[-1][0] >= last:
                watch.close()
                return events
    raise AssertionError("the reference watch ended early")


async def feed_across_a_kill(
    pilot: Pilot[None], names: list[str], kill: Callable[[str], Awaitable[None]]
) -> None:
    """The watch feed, across a kill of the member it watches: it resumes on another member and
    shows every event of the history (read by a watch of its own) exactly once, in order."""
    app = pilot.app
    assert isinstance(app, AttachApp)
    await pilot.press("w")
    feed = app.query_one(WatchFeed)

    def watched_member() -> str | None:
        return feed.member if feed.feed.seen and feed.member in names else None

    watched = await until(pilot, watched_member, "a watch on a named member")
    start = feed.feed.start_revision
    others = [r.endpoint for r in app.rows if r.name != watched]
    for i in range(WRITES):
        await put_somewhere(others, f"before-{i}")
    await until(pilot, lambda: len(feed.feed.events) == WRITES, "the first writes")
    await kill(watched)
    await until(pilot, lambda: feed.member not in (None, watched), "resumed elsewhere")
    for i in range(WRITES):
        last = await put_somewhere(others, f"after-{i}")
    expected = await history(others[0], start, last)
    await until(pilot, lambda: feed.feed.seen >= last, "the last write")
    got = [(e.revision, e.key) for e in feed.feed.events]
    assert got == expected
    assert len(got) == 2 * WRITES
    assert any(f"{watched} dropped the watch" in line for line in feed.lines)


def lease_keys(app: AttachApp, lease_id: int) -> list[bytes] | None:
    """The keys the LEASES tab shows for ``lease_id`` (None: the lease is not shown)."""
    lease = app.query_one(LeaseList).book.rows.get(lease_id)
    return None if lease is None else lease.keys


async def revoke_from_the_tui(pilot: Pilot[None], lease_id: int) -> None:
    """Highlight ``lease_id`` in the LEASES tab, press d and confirm; wait until it is gone."""
    app = pilot.app
    assert isinstance(app, AttachApp)
    await pilot.press("l")
    leases = app.query_one(LeaseList)
    await until(pilot, lambda: lease_id in leases.book.rows, "the lease listed")
    ids = [row.lease_id for row in leases.book.shown()]
    leases.table.move_cursor(row=ids.index(lease_id))
    assert leases.selected == lease_id
    await pilot.press("d", "y")
    await until(pilot, lambda: lease_keys(app, lease_id) is None, "the lease gone")
