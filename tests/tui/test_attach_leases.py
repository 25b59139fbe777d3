"""The LEASES tab driven by Textual's pilot against a kv member in the test's own event loop:
a lease granted from the TUI is listed with its keys, revoked from it, and one left alone
expires on its own (the member's minimum TTL, 2 s with etcd's default timing). Every wait is
bounded (`tests.tui.attach_pilot.until`); none is a fixed sleep."""

from __future__ import annotations

from textual.widgets import Input, RichLog, TabbedContent

from kv.client import KVClient
from kv.lease import min_ttl
from tests.tui.attach_pilot import POLL_INTERVAL, lease_keys, revoke_from_the_tui, until
from tui.attach import AttachApp
from tui.attach.keys import KeyBrowser
from tui.attach.leasebox import GrantBox
from tui.attach.leaselist import LeaseList


def attach(endpoint: str) -> AttachApp:
    return AttachApp([endpoint], poll_interval=POLL_INTERVAL)


def shown_keys(app: AttachApp) -> list[bytes]:
    return [kv.key for kv in app.query_one(KeyBrowser).kvs]


async def test_a_lease_granted_from_the_tui_is_listed_with_its_keys_and_revoked_from_it(
    kv_server: str, client: KVClient
) -> None:
    app = attach(kv_server)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.press("l")
        assert app.query_one(TabbedContent).active == "leases"
        await pilot.press("n")
        box = app.screen
        assert isinstance(box, GrantBox)
        box.query_one("#ttl", Input).value = "30"
        await pilot.press("enter")
        (listed,) = (await client.lease_leases()).leases
        await client.put(b"held", b"v", lease=listed.ID)
        await client.put(b"free", b"v")
        keys = await until(pilot, lambda: lease_keys(app, listed.ID) or None, "its keys")
        assert keys == [b"held"]
        row = app.query_one(LeaseList).book.rows[listed.ID]
        assert (
            row.granted_ttl == 30
            and 0 < row.countdown.remaining(app.query_one(LeaseList).clock()) <= 30
        )
        await revoke_from_the_tui(pilot, listed.ID)
        await pilot.press("b")
        await until(pilot, lambda: shown_keys(app) == [b"free"], "the held key gone")
    assert list((await client.lease_leases()).leases) == []


async def test_a_lease_left_alone_counts_down_and_leaves_the_list_when_it_expires(
    kv_server: str, client: KVClient
) -> None:
    shortest = min_ttl(1000, 100)  # the kv_server's timing is etcd's default
    granted = await client.lease_grant(1)
    assert shortest == granted.TTL
    await client.put(b"brief", b"v", lease=granted.ID)
    app = attach(kv_server)
    async with app.run_test(size=(110, 30)) as pilot:
        leases = app.query_one(LeaseList)
        await until(pilot, lambda: lease_keys(app, granted.ID) == [b"brief"], "listed")
        first = leases.book.rows[granted.ID].countdown.remaining(leases.clock())
        await until(
            pilot,
            lambda: (
                (row := leases.book.rows.get(granted.ID)) is None
                or row.countdown.remaining(leases.clock()) < first
            ),
            "the countdown going down",
        )
        await until(pilot, lambda: lease_keys(app, granted.ID) is None, "expired")
        assert any("1 lease gone" in line for line in event_lines(app))
    assert await client.get(b"brief") is None


def event_lines(app: AttachApp) -> list[str]:
    return [str(line.text) for line in app.query_one("#events", RichLog).lines]
