"""The LEASES tab: every lease with its granted TTL, the time left counting down, and its keys
(chapter 7's Lease API).

A worker polls: ``LeaseLeases`` for the IDs, then ``LeaseTimeToLive`` with the keys for each
of the first `tui.attach.leases.LEASE_CAP` (any member answers: kv and etcd forward TimeToLive
to the leader, whose lessor holds the deadlines). `tui.attach.leases.LeaseBook` keeps the
answers; a timer redraws the countdowns several times a second from the local clock. A lease
that expires or is revoked leaves the table, and ``gone`` tells the app (its keys left the key
browser too).

Keys: ``n`` grants a lease (a TTL asked for in a box), ``d`` revokes the highlighted one (after
a confirmation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from kv.api.etcdserverpb import rpc_pb2
from kv.server.errors import EtcdError
from tui.attach.leasebox import ConfirmRevoke, GrantBox
from tui.attach.leases import LEASE_CAP, LeaseBook, keys_preview, lease_hex
from tui.attach.poller import Poller, describe_error

#: Seconds between two redraws of the countdowns (local: no request).
TICK = 0.2
_COLUMNS = ("lease ID", "granted TTL", "left", "keys")


class LeaseList(Vertical):
    """The cluster's leases, polled, with countdowns between the polls."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "grant", "Grant lease"),
        Binding("d", "revoke", "Revoke lease"),
    ]

    DEFAULT_CSS = """
    LeaseList { height: 1fr; }
    LeaseList .state { height: 1; color: $text-muted; padding: 0 1; }
    LeaseList DataTable { height: 1fr; }
    """

    def __init__(
        self,
        poller: Poller,
        *,
        poll_interval: float,
        gone: Callable[[list[int]], None],
        cap: int = LEASE_CAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(id="lease-list")
        self.poller = poller
        self.poll_interval = poll_interval
        self.gone = gone
        self.clock = clock
        self.book = LeaseBook(cap=cap)
        self.error: str | None = None
        self.polls = 0

    def compose(self) -> ComposeResult:
        yield Static("asking for the leases ...", classes="state")
        yield DataTable(cursor_type="row", id="lease-table")

    def on_mount(self) -> None:
        for column in _COLUMNS:
            self.table.add_column(column, key=column)
        self.set_interval(TICK, self.draw_countdowns)
        self.poll_forever()

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#lease-table", DataTable)

    @property
    def selected(self) -> int | None:
        """The highlighted lease's ID (None: the table is empty)."""
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if key is None else int(key, 16)

    # -- polling ------------------------------------------------------------------------

    @work(exclusive=True, group="leases")
    async def poll_forever(self) -> None:
        """Poll the leases, show them, wait `poll_interval`; until the app ends (a new poll
        started now replaces this one: the worker is exclusive)."""
        while True:
            try:
                gone = await self.poll()
            except Exception as error:  # reported, never raised into the UI
                self.error = describe_error(error)
            else:
                self.error = None
                self.polls += 1
                if gone:
                    self.gone(gone)
            self.draw()
            await asyncio.sleep(self.poll_interval)

    async def poll(self) -> list[int]:
        """One poll: the IDs that left the book."""
        listed = await self.poller.any_client(lambda client: client.lease_leases())
        asked_at = self.clock()
        ids = self.book.to_ask(lease.ID for lease in listed.leases)
        answers = await asyncio.gather(*(self.time_to_live(lease_id) for lease_id in ids))
        return self.book.update([a for a in answers if a is not None], asked_at)

    async def time_to_live(self, lease_id: int) -> rpc_pb2.LeaseTimeToLiveResponse | None:
        """TimeToLive with the keys; None if the lease went between the list and the ask."""
        try:
            return await self.poller.any_client(
                lambda client: client.lease_time_to_live(lease_id, keys=True)
            )
        except EtcdError as error:
            if "lease not found" in error.message:
                return None
            raise

    # -- the screen ---------------------------------------------------------------------

    def draw(self) -> None:
        """The table from the book: rebuilt when the leases changed, else only its cells."""
        if not self.query("#lease-table"):
            return  # the app is closing: its widgets go before its workers
        table, rows = self.table, self.book.shown()
        shown = [str(key.value) for key in table.rows]
        if shown != [row.hex_id for row in rows]:
            chosen = self.selected
            table.clear()
            for row in rows:
                table.add_row(row.hex_id, "", "", "", key=row.hex_id)
            ids = [row.lease_id for row in rows]
            if chosen in ids:
                table.move_cursor(row=ids.index(chosen))
        now = self.clock()
        for row in rows:
            table.update_cell(row.hex_id, _COLUMNS[1], f"{row.granted_ttl}s")
            table.update_cell(row.hex_id, _COLUMNS[2], f"{row.countdown.remaining(now):.1f}s")
            table.update_cell(row.hex_id, _COLUMNS[3], keys_preview(row.keys))
        self.draw_state()

    def draw_countdowns(self) -> None:
        if not self.query("#lease-table"):
            return  # the app is closing
        now = self.clock()
        for row in self.book.shown():
            if row.hex_id in self.table.rows:
                left = f"{row.countdown.remaining(now):.1f}s"
                self.table.update_cell(row.hex_id, _COLUMNS[2], left)

    def draw_state(self) -> None:
        count = len(self.book.rows)
        hidden = (
            f" · {self.book.hidden} more not shown (at most {self.book.cap})"
            if self.book.hidden
            else ""
        )
        error = f" · last poll failed: {self.error}" if self.error else ""
        keys = "n grant · d revoke"
        line = f"{count} lease{'s' if count != 1 else ''}{hidden}{error} · {keys}"
        for state in self.query(".state").results(Static):  # none while the app closes
            state.update(line)

    # -- actions ------------------------------------------------------------------------

    def action_grant(self) -> None:

        def answered(ttl: int | None) -> None:
            if ttl is not None:
                self.grant(ttl)

        self.app.push_screen(GrantBox(), answered)

    @work(group="lease-writes")
    async def grant(self, ttl: int) -> None:
        try:
            granted = await self.poller.any_client(lambda client: client.lease_grant(ttl))
        except Exception as error:  # reported, never raised into the UI
            self.notify(f"grant failed: {describe_error(error)}", severity="error")
            return
        # etcdctl's words: "lease 694d... granted with TTL(60s)".
        self.notify(f"lease {lease_hex(granted.ID)} granted with TTL({granted.TTL}s)")
        self.poll_forever()

    def action_revoke(self) -> None:
        lease_id = self.selected
        if lease_id is None:
            self.notify("no lease to revoke")
            return

        def answered(revoke: bool | None) -> None:
            if revoke:
                self.revoke(lease_id)

        self.app.push_screen(ConfirmRevoke(f"lease {lease_hex(lease_id)}"), answered)

    @work(group="lease-writes")
    async def revoke(self, lease_id: int) -> None:
        try:
            await self.poller.any_client(lambda client: client.lease_revoke(lease_id))
        except Exception as error:  # reported, never raised into the UI
            self.notify(f"revoke failed: {describe_error(error)}", severity="error")
            return
        self.notify(f"lease {lease_hex(lease_id)} revoked")  # etcdctl's words
        self.book.forget(lease_id)
        self.draw()
        self.gone([lease_id])
