"""ON THE WIRE: the messages between the nodes, each moving along its line (the TUI).

A message is drawn from its sender to its receiver with a ``●`` at how far it got
(`tui.traffic`); slow the run down (``-``) or step it (``.``) to watch one travel. A lost one
is drawn struck out with a ``✗`` where it died, and says "lost", for a moment.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.view import WireItem

TRACK = 12

_KIND_STYLES = (
    ("pre-vote", "yellow"),
    ("vote", "bold yellow"),
    ("append", "cyan"),
    ("heartbeat", "dim"),
    ("snapshot", "magenta"),
    ("read-index", "blue"),
)


class WirePane(Widget):
    """One line per message in flight, earliest arrival first."""

    DEFAULT_CSS = """
    WirePane {
        border: round $primary;
        height: 100%;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    #: The messages on the wire.
    items: reactive[tuple[WireItem, ...]] = reactive(())
    #: How many messages are on the wire in all (more than fit, sometimes).
    total: reactive[int] = reactive(0)
    #: How many messages the network lost so far (`kv.sim.Network.dropped`).
    lost: reactive[int] = reactive(0)

    def on_mount(self) -> None:
        self.border_title = "ON THE WIRE"

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if not self.items:
            text.append("(nothing in flight)", style="dim")
            return text
        height = max(1, self.content_size.height)
        shown = self.items[:height]
        for i, item in enumerate(shown):
            if i:
                text.append("\n")
            dot = min(TRACK - 1, int(item.progress * TRACK))
            style = next((s for word, s in _KIND_STYLES if item.label.startswith(word)), "")
            if item.lost:
                track = "─" * dot + "✗" + "┄" * (TRACK - 1 - dot)
                text.append(f"n{item.frm} {track}▷ n{item.to} ", style="red")
                text.append("lost ", style="bold red")
                text.append(item.label, style=f"{style} strike")
                continue
            track = "─" * dot + "●" + "─" * (TRACK - 1 - dot)
            text.append(f"n{item.frm} {track}▶ n{item.to} ")
            text.append(item.label, style=style)
        return text

    def watch_total(self) -> None:
        self._subtitle()

    def watch_lost(self) -> None:
        self._subtitle()

    def _subtitle(self) -> None:
        parts = [f"{self.total} in flight"] if self.total else []
        if self.lost:
            parts.append(f"{self.lost} lost")
        self.border_subtitle = " · ".join(parts)
