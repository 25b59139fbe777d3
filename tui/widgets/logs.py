"""The LOGS matrix: nodes x index, each entry numbered and coloured by its term (the TUI).

Committed, uncommitted (``░``), divergent-from-the-leader (``!``), missing (``x``) and
compacted (``▒``) entries differ by a mark as well as by colour. The matrix follows the tail
of the longest log; ``left``/``right``/``home`` scroll back over logs of any length and
``end`` follows the tail again.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widget import Widget

from kv.sim import Cluster
from tui.theme import term_colour
from tui.view import CellKind, LogMatrix, highest_index, log_matrix

LABEL = 7  # "n1     "
CELL = 3  # a mark, a two-digit term

_MARKS = {
    CellKind.COMMITTED: " ",
    CellKind.UNCOMMITTED: "░",
    CellKind.DIVERGENT: "!",
}


class LogsPanel(Widget, can_focus=True):
    """The log matrix of every node (see the module docstring)."""

    DEFAULT_CSS = """
    LogsPanel {
        border: round $primary;
        height: auto;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    LogsPanel:focus { border: round $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "scroll_log(-1)", "older", show=False),
        Binding("right", "scroll_log(1)", "newer", show=False),
        Binding("home", "scroll_home", "first entry", show=False),
        Binding("end", "follow", "follow the tail", show=False),
    ]

    #: What the matrix shows now.
    matrix: reactive[LogMatrix] = reactive(LogMatrix(1, ()))
    #: Follow the tail (the newest entries); off once the user scrolls back.
    follow: reactive[bool] = reactive(True)
    #: The first index shown when not following.
    first: reactive[int] = reactive(1)
    #: The highest index of any log (to know how far one may scroll).
    highest: reactive[int] = reactive(0)

    def on_mount(self) -> None:
        self.border_title = (
            "LOGS  (number and colour = term · ░ not committed · x missing · "
            "! differs from the leader · ▒ compacted)"
        )

    def columns(self) -> int:
        """How many entries fit across."""
        return max(1, (self.content_size.width - LABEL) // CELL)

    def show(self, cluster: Cluster) -> None:
        """Read the logs for the window in view."""
        self.highest = highest_index(cluster)
        width = self.columns()
        start = max(1, self.highest - width + 1) if self.follow else self.first
        self.matrix = log_matrix(cluster, start, width)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return 1 + len(self.matrix.rows)

    def render(self) -> Text:
        matrix = self.matrix
        text = Text(no_wrap=True, overflow="crop")
        text.append(f"{'index':<{LABEL}}", style="dim")
        for index in range(matrix.start, matrix.end):
            text.append(f"{index % 1000:>{CELL}}", style="dim")
        if not self.follow:
            text.append("  (scrolled: end follows)", style="italic dim")
        for row in matrix.rows:
            text.append(f"\nn{row.node:<{LABEL - 1}}")
            for term, kind in row.cells:
                self._cell(text, term, kind)
        return text

    @staticmethod
    def _cell(text: Text, term: int, kind: CellKind) -> None:
        if kind is CellKind.MISSING:
            text.append("  x", style="dim")
        elif kind is CellKind.COMPACTED:
            text.append(" ▒▒", style="dim")
        else:
            style = term_colour(term)
            if kind is CellKind.COMMITTED:
                style = f"bold {style}"
            elif kind is CellKind.DIVERGENT:
                style = "bold white on red"
            text.append(f"{_MARKS[kind]}{term:>2}"[-CELL:], style=style)

    def action_scroll_log(self, delta: int) -> None:
        width = self.columns()
        first = self.matrix.start if self.follow else self.first
        last_start = max(1, self.highest - width + 1)
        self.first = max(1, min(last_start, first + delta * max(1, width // 2)))
        self.follow = self.first >= last_start
        self._reshow()

    def action_scroll_home(self) -> None:
        self.first, self.follow = 1, False
        self._reshow()

    def action_follow(self) -> None:
        self.follow = True
        self._reshow()

    def _reshow(self) -> None:
        cluster = getattr(self.app, "cluster", None)
        if isinstance(cluster, Cluster):
            self.show(cluster)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.action_scroll_log(-1)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.action_scroll_log(1)
