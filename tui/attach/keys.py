"""The key browser: a prefix, one page of keys at a time, each key's value and revisions.

Type a prefix and press enter; ``]`` and ``[`` page forward and back (`tui.attach.browse`
computes each page's Range). The table shows key, a printable preview of the value, the
key's version (writes since it was created) and its create and mod revisions -- etcd's
``KeyValue`` fields; the line under it shows the highlighted key in full. Reads go through
``fetch`` and ``count``, which the app points at whichever member answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from tui.attach.browse import PAGE_SIZE, Pager, PageRequest, parse_bytes, preview

Fetch = Callable[[PageRequest], Awaitable[rpc_pb2.RangeResponse]]
Count = Callable[[bytes, bytes], Awaitable[int]]


class KeyBrowser(Vertical):
    """Prefix search and paging over the cluster's keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search prefix"),
        Binding("right_square_bracket", "next_page", "Next page"),
        Binding("left_square_bracket", "previous_page", "Prev page"),
        Binding("g", "reload", "Reload keys"),
    ]

    DEFAULT_CSS = """
    KeyBrowser { height: 1fr; }
    KeyBrowser Input { height: 3; }
    KeyBrowser DataTable { height: 1fr; }
    KeyBrowser .where { height: 1; color: $text-muted; padding: 0 1; }
    KeyBrowser .detail { height: auto; max-height: 3; padding: 0 1; }
    """

    kvs: reactive[list[kv_pb2.KeyValue]] = reactive(list, always_update=True, init=False)
    """The keys of the page shown."""
    more: reactive[bool] = reactive(False)
    """The server said there are keys after this page."""
    total: reactive[int | None] = reactive(None)
    """How many keys the prefix holds (None: not counted yet)."""

    def __init__(self, fetch: Fetch, count: Count, *, page_size: int = PAGE_SIZE) -> None:
        super().__init__()
        self.fetch = fetch
        self.count = count
        self.pager = Pager(page_size=page_size)
        self.error: str | None = None
        #: The latest load's token while a page is on its way: paging waits for it (its last
        #: key is where the next page begins).
        self.pending: object | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="prefix (enter: search; empty: every key)", id="prefix")
        table: DataTable[str] = DataTable(cursor_type="row", id="key-table")
        table.add_columns("KEY", "VALUE", "VER", "CREATE", "MOD")
        yield table
        yield Static("", classes="where")
        yield Static("", classes="detail")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#key-table", DataTable)

    @property
    def selected(self) -> kv_pb2.KeyValue | None:
        """The key-value under the cursor."""
        row = self.table.cursor_row
        return self.kvs[row] if 0 <= row < len(self.kvs) else None

    # -- loading ------------------------------------------------------------------------

    @work(exclusive=True, group="keys")
    async def load(self, request: PageRequest | None = None) -> None:
        """Fetch the current page (a worker: the UI stays live while a member is slow)."""
        request = request or self.pager.request()
        self.pending = token = object()
        try:
            response = await self.fetch(request)
            if self.pager.page_number == 1:
                self.total = await self.count(request.key, request.range_end)
        except Exception as error:  # any failure is shown, never raised into the UI
            self.error = f"could not read keys: {error}"
            self.refresh_where()
            return
        finally:
            if self.pending is token:  # not a newer load's (this one may have been cancelled)
                self.pending = None
        self.error = None
        self.more = response.more
        self.kvs = list(response.kvs)

    def watch_kvs(self, kvs: list[kv_pb2.KeyValue]) -> None:
        if not self.query("#key-table"):
            return  # the app is closing: its widgets are gone before its workers
        table = self.table
        table.clear()
        for kv in kvs:
            table.add_row(
                preview(kv.key, 30),
                preview(kv.value, 30),
                str(kv.version),
                str(kv.create_revision),
                str(kv.mod_revision),
            )
        self.refresh_where()
        self.show_detail()

    def refresh_where(self) -> None:
        pager = self.pager
        first = (pager.page_number - 1) * pager.page_size + 1
        shown = f"keys {first}-{first + len(self.kvs) - 1}" if self.kvs else "no keys"
        total = "" if self.total is None else f" of {self.total}"
        more = " · ] next" if self.more else ""
        back = " · [ previous" if pager.page_number > 1 else ""
        prefix = preview(pager.prefix) if pager.prefix else "(every key)"
        line = f"prefix {prefix} · page {pager.page_number} · {shown}{total}{more}{back}"
        self.query_one(".where", Static).update(self.error or line)

    @on(DataTable.RowHighlighted, "#key-table")
    def show_detail(self) -> None:
        kv = self.selected
        text = ""
        if kv is not None:
            text = (
                f"{preview(kv.key, 200)} = {preview(kv.value, 200)}\n"
                f"{len(kv.value)} bytes · version {kv.version} · created rev "
                f"{kv.create_revision} · modified rev {kv.mod_revision} · lease {kv.lease}"
            )
        self.query_one(".detail", Static).update(text)

    # -- actions --------------------------------------------------------------------------

    @on(Input.Submitted, "#prefix")
    def search(self, event: Input.Submitted) -> None:
        try:
            prefix = parse_bytes(event.value)
        except ValueError as error:
            self.notify(f"not a prefix: {error}", severity="error")
            return
        self.pager = Pager(prefix=prefix, page_size=self.pager.page_size)
        self.total = None
        self.load()
        self.table.focus()

    def action_search(self) -> None:
        self.query_one("#prefix", Input).focus()

    def action_next_page(self) -> None:
        if self.more and self.kvs and not self.pending:
            self.load(self.pager.next(self.kvs[-1].key))

    def action_previous_page(self) -> None:
        request = None if self.pending else self.pager.previous()
        if request is not None:
            self.load(request)

    def action_reload(self) -> None:
        self.load()
