"""The NODES panel: each node's role (a word and a colour), term, vote, commit and applied
index, its election timer, and the leader's next/match for it (the TUI)."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from tui.theme import ROLE_STYLES, bar, term_colour
from tui.view import NodeRow

#: With more nodes than this, each node takes one line instead of two.
TWO_LINES_UP_TO = 4


class NodesPanel(Widget):
    """One or two lines per node; click a node to select it (the keys pane follows it)."""

    DEFAULT_CSS = """
    NodesPanel {
        border: round $primary;
        border-title-color: $text;
        height: auto;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    #: The nodes, as `tui.view.node_rows` reads them.
    rows: reactive[tuple[NodeRow, ...]] = reactive(())
    #: The node the keys pane and the inspector show.
    selected: reactive[int] = reactive(1)

    class Selected(Message):
        """The user clicked node ``node``."""

        def __init__(self, node: int) -> None:
            self.node = node
            super().__init__()

    def on_mount(self) -> None:
        self.border_title = "NODES"

    def lines_per_node(self) -> int:
        return 2 if len(self.rows) <= TWO_LINES_UP_TO else 1

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.rows) * self.lines_per_node())

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        narrow = self.content_size.width < 54
        two = self.lines_per_node() == 2
        for i, row in enumerate(self.rows):
            if i:
                text.append("\n")
            self._head(text, row, narrow)
            if two:
                text.append("\n   ")
            self._timer(text, row, narrow or not two)
        return text

    def _head(self, text: Text, row: NodeRow, narrow: bool) -> None:
        mark = "▶" if row.id == self.selected else " "
        text.append(f"{mark}n{row.id} ", style="bold" if row.id == self.selected else "")
        text.append(f"{row.role:<13}", style=ROLE_STYLES.get(row.role, ""))
        vote = f"n{row.vote}" if row.vote else "-"
        if narrow:
            text.append(" t")
            text.append(f"{row.term:<3}", style=term_colour(row.term))
            text.append(f"v {vote:<3} c{row.commit:<4} a{row.applied:<4}")
            return
        text.append(" term ")
        text.append(f"{row.term:<3}", style=term_colour(row.term))
        text.append(f"vote {vote:<3} commit {row.commit:<4} app {row.applied}")

    def _timer(self, text: Text, row: NodeRow, short: bool) -> None:
        if not row.up:
            text.append("  (down: it keeps only what it persisted)", style="dim")
            return
        width = 6 if short else 10
        label = "" if short else f"{row.timer:<9}"
        text.append(f"{label}{bar(row.timer_fill, width)}", style="dim" if short else "")
        if row.progress is not None:
            warn = " ⚠" if row.progress.lagging else ""
            text.append(f" next {row.progress.next} match {row.progress.match}{warn}")
        elif row.role == "LEADER":
            text.append(f" log to {row.last_index}")

    def on_click(self, event: events.Click) -> None:
        index = event.y // self.lines_per_node()
        if 0 <= index < len(self.rows):
            self.post_message(self.Selected(self.rows[index].id))
