"""KEYS: one node's applied key-value state (the TUI). Click a node (or press its number)
to see its state: a lagging follower's keys lag too."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.view import KeyRow


class KeysPane(Widget):
    """The keys, values and mod revisions of node ``node``'s store."""

    DEFAULT_CSS = """
    KeysPane {
        border: round $primary;
        height: 100%;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    #: Whose state this is.
    node: reactive[int] = reactive(1)
    #: Its keys, in key order (empty while it is down).
    rows: reactive[tuple[KeyRow, ...]] = reactive(())
    #: The node is up (a down node has no state machine in memory).
    up: reactive[bool] = reactive(True)

    def watch_node(self, node: int) -> None:
        self.border_title = f"KEYS (as n{node} applied)"

    def on_mount(self) -> None:
        self.watch_node(self.node)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if not self.up:
            text.append(f"n{self.node} is down: its state machine is gone", style="dim")
            return text
        if not self.rows:
            text.append("(no keys yet: press c for a client put)", style="dim")
            return text
        for i, row in enumerate(self.rows):
            if i:
                text.append("\n")
            text.append(f"{row.key} = {row.value}", style="bold")
            text.append(f"  rev {row.mod_revision} v{row.version}", style="dim")
        return text
