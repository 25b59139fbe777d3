"""Attach mode driven by Textual's pilot against a kv member in the test's own event loop.

The member is real (the root conftest's ``kv_server``: gRPC on a free port), so each test
reads what the TUI shows after real Status, Range, Put and DeleteRange calls. The cluster
tests (a member killed while attached) are in ``test_attach_cluster.py`` and
``test_attach_etcd.py``.
"""

from __future__ import annotations

from textual.widgets import Input

from kv.client import KVClient
from tests.compat.servers import free_ports
from tests.tui.attach_pilot import POLL_INTERVAL, one_leader, until
from tui.attach import AttachApp
from tui.attach.feed import Kind
from tui.attach.keys import KeyBrowser
from tui.attach.members import MembersTable
from tui.attach.model import Role
from tui.attach.watchfeed import WatchFeed


def attach(*endpoints: str, page_size: int = 50) -> AttachApp:
    return AttachApp(list(endpoints), poll_interval=POLL_INTERVAL, page_size=page_size)


def shown_keys(app: AttachApp) -> list[bytes]:
    return [kv.key for kv in app.query_one(KeyBrowser).kvs]


async def test_a_lone_member_is_shown_as_leader_with_its_term(kv_server: str) -> None:
    app = attach(kv_server)
    async with app.run_test(size=(100, 30)) as pilot:
        leader = await until(pilot, lambda: one_leader(app), "leader")
        assert leader.endpoint == kv_server
        assert leader.sample is not None and leader.sample.term >= 1
        assert leader.name == "default"  # from MemberList


async def test_an_endpoint_that_does_not_answer_is_down_and_the_app_keeps_running(
    kv_server: str,
) -> None:
    (closed,) = free_ports(1)
    app = attach(kv_server, f"127.0.0.1:{closed}")
    async with app.run_test() as pilot:
        down = await until(
            pilot, lambda: next((r for r in app.rows if r.role is Role.DOWN), None), "DOWN row"
        )
        assert down.endpoint == f"127.0.0.1:{closed}"
        assert down.retry_in is not None
        await until(pilot, lambda: one_leader_among_up(app), "the other member still shown")
        assert app.is_running


def one_leader_among_up(app: AttachApp) -> bool:
    return any(r.role is Role.LEADER for r in app.rows)


async def test_keys_are_paged_forward_and_back(kv_server: str, client: KVClient) -> None:
    keys = [f"k{i:02}".encode() for i in range(25)]
    for key in keys:
        await client.put(key, b"v")
    app = attach(kv_server, page_size=10)
    async with app.run_test() as pilot:
        await pilot.press("b")
        browser = app.query_one(KeyBrowser)
        await until(pilot, lambda: shown_keys(app) == keys[:10], "first page")
        assert browser.total == 25 and browser.more
        browser.table.focus()
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: shown_keys(app) == keys[10:20], "second page")
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: shown_keys(app) == keys[20:], "last page")
        assert not browser.more
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: shown_keys(app) == keys[10:20], "second page again")


async def test_a_prefix_search_shows_only_the_keys_under_it(
    kv_server: str, client: KVClient
) -> None:
    for key in (b"app/a", b"app/b", b"apple", b"other"):
        await client.put(key, b"v")
    app = attach(kv_server)
    async with app.run_test() as pilot:
        await pilot.press("b")
        await until(pilot, lambda: len(shown_keys(app)) == 4, "every key")
        app.query_one("#prefix", Input).focus()
        await pilot.press(*"app/", "enter")
        await until(pilot, lambda: shown_keys(app) == [b"app/a", b"app/b"], "keys under app/")


def key_field_focused(app: AttachApp) -> bool:
    fields = app.screen.query("#key")
    return bool(fields) and app.screen.focused is fields.first()


async def test_the_put_box_writes_a_key_the_browser_then_shows(
    kv_server: str, client: KVClient
) -> None:
    app = attach(kv_server)
    async with app.run_test() as pilot:
        await pilot.press("b", "c")
        # Type only once the put box is open and its key field has the focus: keys pressed
        # before would go to the browser behind it (a full run saw the write never made).
        await until(pilot, lambda: key_field_focused(app), "the put box, its key field focused")
        await pilot.press(*"greeting")
        app.screen.query_one("#value", Input).focus()
        await pilot.press(*"hello", "enter")
        await until(pilot, lambda: shown_keys(app) == [b"greeting"], "the new key")
    written = await client.get(b"greeting")
    assert written is not None and written.value == b"hello"


async def test_the_box_deletes_the_highlighted_key(kv_server: str, client: KVClient) -> None:
    await client.put(b"doomed", b"v")
    await client.put(b"kept", b"v")
    app = attach(kv_server)
    async with app.run_test() as pilot:
        await pilot.press("b")
        await until(pilot, lambda: shown_keys(app) == [b"doomed", b"kept"], "both keys")
        app.query_one(KeyBrowser).table.focus()
        await pilot.press("c", "ctrl+d")
        await until(pilot, lambda: shown_keys(app) == [b"kept"], "the key deleted")
    assert await client.get(b"doomed") is None


async def test_puts_and_deletes_appear_in_the_watch_feed_in_revision_order(
    kv_server: str, client: KVClient
) -> None:
    app = attach(kv_server)
    async with app.run_test() as pilot:
        await pilot.press("w")
        feed = app.query_one(WatchFeed)
        await until(pilot, lambda: feed.feed.seen > 0, "the watch created")
        written = [await client.put(f"k{i}", f"v{i}") for i in range(3)]
        gone = await client.delete_range("k1")
        await until(pilot, lambda: len(feed.feed.events) == 4, "four events")
        revisions = [w.header.revision for w in written] + [gone.header.revision]
        assert [(e.revision, e.kind, e.key) for e in feed.feed.events] == [
            (revisions[0], Kind.PUT, b"k0"),
            (revisions[1], Kind.PUT, b"k1"),
            (revisions[2], Kind.PUT, b"k2"),
            (revisions[3], Kind.DELETE, b"k1"),
        ]
        assert f"{revisions[1]:>6} PUT    k1 = v1" in feed.lines


async def test_a_paused_feed_shows_nothing_new_until_resumed(
    kv_server: str, client: KVClient
) -> None:
    app = attach(kv_server)
    async with app.run_test() as pilot:
        await pilot.press("w")
        feed = app.query_one(WatchFeed)
        await until(pilot, lambda: feed.feed.seen > 0, "the watch created")
        await pilot.press("space")
        await client.put("k", "while paused")
        await until(pilot, lambda: feed.feed.unseen == 1, "the event kept")
        assert not any("while paused" in line for line in feed.lines)
        await pilot.press("space")
        assert any("k = while paused" in line for line in feed.lines)


async def test_a_prefix_typed_in_the_feed_watches_only_keys_under_it_with_prev_values(
    kv_server: str, client: KVClient
) -> None:
    app = attach(kv_server)
    async with app.run_test() as pilot:
        await pilot.press("w", "v", "slash")
        await pilot.press(*"a/", "enter")
        feed = app.query_one(WatchFeed)
        await until(pilot, lambda: feed.feed.seen > 0 and feed.member, "the new watch")
        assert feed.feed.prefix == b"a/" and feed.feed.prev_kv
        await client.put("b", "no")
        await client.put("a/x", "1")
        await client.put("a/x", "2")
        await until(pilot, lambda: len(feed.feed.events) == 2, "two events")
        assert [e.value for e in feed.feed.events] == [b"1", b"2"]
        assert feed.lines[-1].endswith("a/x = 2  (was: 1)")


async def test_help_lists_the_keys_and_closes_again(kv_server: str) -> None:
    app = attach(kv_server)
    async with app.run_test() as pilot:
        await pilot.press("question_mark")
        text = str(app.screen.query_one("Static").render())
        assert "Move leader" in text and "Next page" in text and "DOWN" in text
        assert "Watch prefix" in text and "WATCH:" in text
        assert "Grant lease" in text and "Revoke lease" in text and "LEASES:" in text
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


async def test_the_command_palette_lists_the_actions_and_no_cluster_controls_here(
    kv_server: str,
) -> None:
    app = attach(kv_server)
    async with app.run_test():
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Put/delete", "Move leader", "Next page", "Pause/resume feed", "Help"} <= titles
        assert {"Grant lease", "Revoke lease"} <= titles
        assert not {"Kill", "Restart", "Partition", "Heal"} & titles


async def test_at_80_columns_every_column_but_the_member_id_fits(kv_server: str) -> None:
    app = attach(kv_server)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: one_leader(app), "leader")
        table = app.query_one(MembersTable)
        widths = {str(key.value): c.get_render_width(table) for key, c in table.columns.items()}
        assert sum(width for key, width in widths.items() if key != "id") <= 80
