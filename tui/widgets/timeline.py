"""The timeline scrubber: the whole run on one line, marked with elections, crashes and
actions, with ``▲`` where the screen is now (the TUI). Click anywhere on it to go there;
``,`` and ``.`` step one event back and forward."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


@dataclass(frozen=True, slots=True)
class Tick:
    """A mark on the timeline: at event ``position``, of ``kind`` ("election", "crash",
    "restart", "action", "violation", ...)."""

    position: int
    kind: str
    label: str


#: How each kind of mark is drawn, and which wins when two share a column.
GLYPHS = {"violation": "!", "crash": "✗", "election": "◆", "restart": "↺", "action": "•"}
_PRIORITY = list(GLYPHS)


@dataclass(frozen=True, slots=True)
class TimelineState:
    position: int = 0
    length: int = 0
    ticks: tuple[Tick, ...] = ()


class Timeline(Widget):
    """``◀ ──◆──✗──◆──•──▲ ▶``: where the run is among what it did."""

    DEFAULT_CSS = """
    Timeline {
        height: 1;
        padding: 0 1;
    }
    """

    state: reactive[TimelineState] = reactive(TimelineState())

    class Seek(Message):
        """The user clicked the timeline at event ``position``."""

        def __init__(self, position: int) -> None:
            self.position = position
            super().__init__()

    def _track_width(self) -> int:
        return max(1, self.content_size.width - 4)

    def _column(self, position: int) -> int:
        width, length = self._track_width(), max(1, self.state.length)
        return min(width - 1, position * width // length)

    def render(self) -> Text:
        state, width = self.state, self._track_width()
        cells = ["─"] * width
        rank = [len(_PRIORITY)] * width
        for tick in state.ticks:
            column = self._column(tick.position)
            glyph_rank = _PRIORITY.index(tick.kind) if tick.kind in GLYPHS else len(_PRIORITY) - 1
            if glyph_rank < rank[column]:
                cells[column], rank[column] = GLYPHS.get(tick.kind, "•"), glyph_rank
        now = self._column(state.position)
        text = Text(no_wrap=True)
        text.append("◀ ", style="dim")
        for column, cell in enumerate(cells):
            if column == now:
                text.append("▲", style="bold reverse")
            else:
                style = "red" if cell in "✗!" else ("green" if cell == "◆" else "dim")
                text.append(cell, style=style)
        text.append(" ▶", style="dim")
        return text

    def on_click(self, event: events.Click) -> None:
        column = event.x - 3  # padding and "◀ "
        width = self._track_width()
        if 0 <= column < width:
            position = round(column * max(1, self.state.length) / width)
            self.post_message(self.Seek(min(position, self.state.length)))
