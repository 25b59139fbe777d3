"""Sparklines of each member's term, raft index and db size over the last polls.

Each series is scaled to its own window (lowest ▁, highest █), followed by its latest value,
so the shape says "the term jumped" or "the index stalled on n3" and the number says how far.
A DOWN member's line says why and when it is asked again instead.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.attach.model import MemberRow, Role, human_bytes, sparkline

#: Characters of history per sparkline at 80 columns; wider terminals get more.
MIN_WIDTH = 8


def trend_line(row: MemberRow, width: int) -> Text:
    """One member's line: name, then term, index and db size trends (or why it is DOWN)."""
    line = Text(f"{row.name:<6.6}", style="bold", no_wrap=True, overflow="ellipsis")
    if row.role is Role.DOWN:
        retry = "" if row.retry_in is None else f" · retrying in {row.retry_in:.0f}s"
        line.append(f"DOWN: {row.error}{retry}", style="red")
        return line
    if row.sample is None:
        return line.append("waiting for its first answer", style="dim")
    # name 6, labels 14, values 3 x 10: the rest is shared by the three sparklines
    spark = max(MIN_WIDTH, (width - 50) // 3)
    for label, series, latest in (
        ("term", row.terms, str(row.sample.term)),
        ("index", row.indexes, str(row.sample.raft_index)),
        ("db", row.db_sizes, human_bytes(row.sample.db_size)),
    ):
        line.append(f"{label} ", style="dim")
        line.append(f"{sparkline(series, spark):<{spark}}")
        line.append(f" {latest:<8} ")
    return line


class Trends(Static):
    """Term, raft index and db size of every member over time."""

    DEFAULT_CSS = """
    Trends {
        height: auto;
        border-top: solid $secondary;
        border-title-align: left;
        padding: 0 1;
    }
    """

    rows_shown: reactive[list[MemberRow]] = reactive(list, always_update=True)
    """The rows of the last poll, history included."""

    def on_mount(self) -> None:
        self.border_title = "TRENDS (term · raft index · db size, oldest left)"

    def watch_rows_shown(self, rows: list[MemberRow]) -> None:
        width = self.size.width or 80
        text = Text("\n").join(trend_line(row, width) for row in rows)
        self.update(text if rows else "no member yet")
