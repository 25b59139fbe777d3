"""`AttachApp`: ``kv tui --endpoints URL,...``, a real cluster watched through its public API.

Four tabs: MEMBERS (the members table, their trends and what happened), KEYS (the key
browser), WATCH (the live watch feed, `tui.attach.watchfeed`) and LEASES (the leases with
their countdowns, `tui.attach.leaselist`). Nothing touches the network on the UI's path: the
poll runs in a worker (`poll_forever`), the watch stream and the lease poll in others, reads
and writes in workers, and
the ``kv cluster`` controls -- which block while they wait for a member -- in thread workers.
A worker never lets an exception out (Textual would end the app): it reports it in the
events pane instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, TabbedContent, TabPane

from kv.api.etcdserverpb import rpc_pb2
from kv.cluster.layout import ClusterError
from tui.attach.browse import PAGE_SIZE, PageRequest, preview
from tui.attach.choose import ChooseMember, ChooseMembers
from tui.attach.edit import Edit, EditBox, Operation
from tui.attach.feed import FEED_SIZE
from tui.attach.help import HelpScreen, help_text, key_name
from tui.attach.keys import KeyBrowser
from tui.attach.leaselist import LeaseList
from tui.attach.local import LocalCluster, find_cluster
from tui.attach.members import MembersTable
from tui.attach.model import MemberRow, Role, changes, leader_of
from tui.attach.poller import POLL_TIMEOUT, Poller, describe_error
from tui.attach.trends import Trends
from tui.attach.watchfeed import WatchFeed

#: Seconds between two polls of the members.
POLL_INTERVAL = 1.0
#: Seconds MoveLeader may take: the leader waits for the target to catch up and campaign.
MOVE_LEADER_TIMEOUT = 5.0
#: The actions that need a ``kv cluster`` (hidden otherwise).
LOCAL_ACTIONS = frozenset({"kill", "restart", "partition", "heal"})


def void(_: object) -> None:
    """Drop a started worker: a screen's callback returns nothing."""


class AttachApp(App[None]):
    """Watch a real cluster; put, delete and move its leader; break it if it is a kv cluster."""

    TITLE = "kv tui · attached"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("c", "edit_key", "Put/delete"),
        Binding("x", "transfer_leader", "Move leader"),
        Binding("k", "kill", "Kill"),
        Binding("R", "restart", "Restart"),
        Binding("p", "partition", "Partition"),
        Binding("h", "heal", "Heal"),
        Binding("m", "show_tab('members')", "Members tab", show=False),
        Binding("b", "show_tab('keys')", "Keys tab", show=False),
        Binding("w", "show_tab('watch')", "Watch tab", show=False),
        Binding("l", "show_tab('leases')", "Leases tab", show=False),
        Binding("q", "quit", "Quit"),
    ]

    CSS = """
    #events { height: 1fr; min-height: 3; border-top: solid $secondary; }
    """

    def __init__(
        self,
        endpoints: list[str],
        *,
        cluster_dir: Path | None = None,
        poll_interval: float = POLL_INTERVAL,
        poll_timeout: float = POLL_TIMEOUT,
        page_size: int = PAGE_SIZE,
        feed_size: int = FEED_SIZE,
    ) -> None:
        super().__init__()
        self.poller = Poller(endpoints, timeout=poll_timeout)
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.feed_size = feed_size
        self.rows: list[MemberRow] = self.poller.rows()
        self.polls = 0
        self.notes: list[str] = []
        self.local: LocalCluster | None = None
        try:
            self.local = find_cluster(endpoints, cluster_dir)
        except ClusterError as error:
            self.notes.append(f"no kill/restart/partition: {error}")

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="members"):
            with TabPane("Members", id="members"), Vertical():
                yield MembersTable(id="table")
                yield Trends(id="trends")
                yield RichLog(id="events", wrap=True, markup=False)
            with TabPane("Keys", id="keys"):
                yield KeyBrowser(self.fetch_page, self.count_keys, page_size=self.page_size)
            with TabPane("Watch", id="watch"):
                yield WatchFeed(self.poller, size=self.feed_size)
            with TabPane("Leases", id="leases"):
                yield LeaseList(
                    self.poller, poll_interval=self.poll_interval, gone=self.leases_gone
                )
        yield Footer()

    def on_mount(self) -> None:
        where = f" · kv cluster in {self.local.root}" if self.local else ""
        self.sub_title = f"{len(self.rows)} endpoints{where}"
        for note in self.notes:
            self.say(note)
        self.query_one(MembersTable).rows_shown = self.rows
        self.poll_forever()
        self.query_one(KeyBrowser).load()

    async def on_unmount(self) -> None:
        await self.poller.close()

    def say(self, line: str) -> None:
        """One line in the events pane, timestamped with the wall clock (for people)."""
        events = self.query("#events").results(RichLog)
        for log in events:  # none while the app closes: its widgets go before its workers
            log.write(f"{time.strftime('%H:%M:%S')} {line}")

    # -- polling ------------------------------------------------------------------------

    @work(exclusive=True, group="poll")
    async def poll_forever(self) -> None:
        """Poll every member, show the answers, wait `poll_interval`; until the app ends."""
        while True:
            try:
                rows = await self.poller.poll()
            except Exception as error:  # a bug in a poll must not end the watching
                self.say(f"poll failed: {describe_error(error)}")
            else:
                self.show(rows)
            await asyncio.sleep(self.poll_interval)

    def show(self, rows: list[MemberRow]) -> None:
        if not self.query(MembersTable) or not self.query(Trends):
            return  # the app is closing: its widgets go (one by one) before its workers
        for line in changes(self.rows, rows):
            self.say(line)
        self.rows = rows
        self.polls += 1
        self.query_one(MembersTable).rows_shown = rows
        self.query_one(Trends).rows_shown = rows
        leader = leader_of(rows)
        down = sum(row.role is Role.DOWN for row in rows)
        where = f" · kv cluster in {self.local.root}" if self.local else ""
        state = f"leader {leader.name}" if leader else "no leader"
        term = f" · term {leader.sample.term}" if leader and leader.sample else ""
        self.sub_title = f"{len(rows)} members · {state}{term} · {down} down{where}"

    def row_named(self, name: str) -> MemberRow | None:
        return next((row for row in self.rows if row.name == name), None)

    # -- keys ---------------------------------------------------------------------------

    async def fetch_page(self, request: PageRequest) -> rpc_pb2.RangeResponse:
        return await self.poller.any_client(
            lambda client: client.range(request.key, request.range_end, limit=request.limit)
        )

    async def count_keys(self, key: bytes, range_end: bytes) -> int:
        answer = await self.poller.any_client(
            lambda client: client.range(key, range_end, count_only=True)
        )
        return answer.count

    def action_edit_key(self) -> None:
        kv = self.query_one(KeyBrowser).selected
        key, value = ("", "") if kv is None else (preview(kv.key, 10**6), preview(kv.value, 10**6))
        self.push_screen(EditBox(key, value), lambda edit: void(self.apply_edit(edit)))

    @work(group="writes")
    async def apply_edit(self, edit: Edit | None) -> None:
        if edit is None:
            return
        shown = preview(edit.key)
        try:
            if edit.operation is Operation.PUT:
                put = await self.poller.any_client(lambda c: c.put(edit.key, edit.value))
                self.say(f"put {shown} = {preview(edit.value)}: revision {put.header.revision}")
            else:
                gone = await self.poller.any_client(lambda c: c.delete_range(edit.key))
                self.say(f"delete {shown}: {gone.deleted} deleted, revision {gone.header.revision}")
        except Exception as error:  # reported, never raised into the UI
            self.say(f"{edit.operation.value} {shown} failed: {describe_error(error)}")
            return
        self.query_one(KeyBrowser).load()

    def leases_gone(self, lease_ids: list[int]) -> None:
        """Leases expired or were revoked: their keys went with them, so the browser reads
        its page again."""
        self.say(
            f"{len(lease_ids)} lease{'s' if len(lease_ids) != 1 else ''} gone: "
            + ", ".join(f"{lease_id:016x}" for lease_id in lease_ids)
        )
        self.query_one(KeyBrowser).load()

    # -- leader transfer ----------------------------------------------------------------

    def action_transfer_leader(self) -> None:
        leader = leader_of(self.rows)
        if leader is None:
            self.notify("no leader right now: MoveLeader must be sent to the leader")
            return
        targets = [
            (row.name, f"{row.name}  {row.role.value}, term {row.sample.term}")
            for row in self.rows
            if row.up and row.role is Role.FOLLOWER and row.sample is not None
        ]
        if not targets:
            self.notify("no follower answers: nobody to hand leadership to")
            return
        title = f"Hand leadership from {leader.name} to:"
        self.push_screen(
            ChooseMember(title, targets), lambda name: void(self.move_leader(leader, name))
        )

    @work(group="writes")
    async def move_leader(self, leader: MemberRow, name: str | None) -> None:
        target = None if name is None else self.row_named(name)
        if target is None or target.member_id is None:
            return
        self.say(f"asking {leader.name} to hand leadership to {target.name} (MoveLeader)")
        try:
            client = self.poller.client_for(leader.endpoint)
            await client.move_leader(target.member_id, timeout=MOVE_LEADER_TIMEOUT)
        except Exception as error:  # reported, never raised into the UI
            self.say(f"move leader to {target.name} failed: {describe_error(error)}")
            return
        self.say(f"{leader.name} handed leadership to {target.name}")

    # -- kv cluster controls ------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The controls of a ``kv cluster`` are hidden when the endpoints are not one."""
        return self.local is not None or action not in LOCAL_ACTIONS

    def _choose_one(self, verb: str, then: Callable[[LocalCluster, str], list[str]]) -> None:
        local = self.local
        if local is None:
            return
        offered = []
        for name in local.names:
            row = self.row_named(name)
            offered.append((name, f"{name}  {row.role.value if row else '?'}"))

        def chosen(name: str | None) -> None:
            if name is not None:
                self.control(f"{verb} {name}", partial(then, local, name))

        self.push_screen(ChooseMember(f"{verb.capitalize()} which member?", offered), chosen)

    def action_kill(self) -> None:
        self._choose_one("kill", LocalCluster.kill)

    def action_restart(self) -> None:
        self._choose_one("restart", LocalCluster.restart)

    def action_partition(self) -> None:
        local = self.local
        if local is None:
            return

        def chosen(names: list[str] | None) -> None:
            if names:
                self.control(f"partition {' '.join(names)}", partial(local.partition, names))

        title = "Cut off which members? (space marks, enter confirms)"
        self.push_screen(ChooseMembers(title, local.names), chosen)

    def action_heal(self) -> None:
        if self.local is not None:
            self.control("heal", self.local.heal)

    @work(thread=True, group="control")
    def control(self, what: str, act: Callable[[], list[str]]) -> None:
        """Run a ``kv cluster`` control (it blocks: a thread) and report what it printed."""
        self.call_from_thread(self.say, f"{what} ...")
        try:
            lines = act()
        except (ClusterError, OSError) as error:
            lines = [f"{what} failed: {error}"]
        for line in lines:
            self.call_from_thread(self.say, line)

    # -- screens ------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    @on(TabbedContent.TabActivated)
    def tab_shown(self, event: TabbedContent.TabActivated) -> None:
        """The keys are read again each time their tab is shown (writes came meanwhile); the
        watch feed takes the keys (space, v, /) when its tab is shown, the lease list its own
        (n, d)."""
        if event.pane.id == "keys":
            browser = self.query_one(KeyBrowser)
            browser.load()
            browser.table.focus()
        elif event.pane.id == "watch":
            self.query_one("#watch-log").focus()
        elif event.pane.id == "leases":
            self.query_one("#lease-table").focus()

    def action_help(self) -> None:
        groups = [
            ("attached cluster", self.BINDINGS),
            ("key browser", KeyBrowser.BINDINGS),
            ("watch feed", WatchFeed.BINDINGS),
            ("leases", LeaseList.BINDINGS),
        ]
        self.push_screen(HelpScreen(help_text(groups)))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The command palette (ctrl+p) lists every action of the keys, by name."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            name = binding.action.split("(")[0]
            if binding.description and self.check_action(name, ()):
                help = f"key {key_name(binding.key)}"
                yield SystemCommand(
                    binding.description, help, partial(self.run_action, binding.action)
                )
        for widget_type in (KeyBrowser, WatchFeed, LeaseList):
            widgets = self.query(widget_type)
            for binding in widget_type.BINDINGS:
                assert isinstance(binding, Binding)
                if widgets:
                    action = partial(widgets.first().run_action, binding.action)
                    help = f"key {key_name(binding.key)}"
                    yield SystemCommand(binding.description, help, action)
