"""The members table: one row per member, from its own ``Maintenance.Status``.

Columns are those of ``etcdctl endpoint status -w table`` that a person watching Raft wants,
roles as words (no colour needed), the member id last because it is the widest: at 80
columns everything else fits. A DOWN member keeps its last known numbers, dimmed, with how
long ago it last answered and when it is asked again.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from tui.attach.model import MemberRow, Role, human_bytes

COLUMNS = (
    ("name", "NAME"),
    ("role", "ROLE"),
    ("term", "TERM"),
    ("index", "INDEX"),
    ("applied", "APPLIED"),
    ("db", "DB"),
    ("in_use", "IN USE"),
    ("version", "VERSION"),
    ("seen", "SEEN"),
    ("id", "ID"),
)

_STYLES = {
    Role.LEADER: "bold green",
    Role.FOLLOWER: "",
    Role.LEARNER: "cyan",
    Role.NO_LEADER: "yellow",
    Role.DOWN: "bold red",
    Role.CONNECTING: "dim",
}


def seen(row: MemberRow) -> str:
    """``0.4s`` ago while it answers; ``retry 4s`` while DOWN."""
    if row.retry_in is not None:
        return f"retry {row.retry_in:.0f}s"
    if row.seen_ago is None:
        return "never"
    return f"{row.seen_ago:.1f}s"


def cells(row: MemberRow) -> tuple[str | Text, ...]:
    """The table's cells for one member, in `COLUMNS` order."""
    sample = row.sample
    style = "dim" if row.role is Role.DOWN else ""
    if sample is None:
        numbers = ("-",) * 6
        member_id = "-"
    else:
        numbers = (
            str(sample.term),
            str(sample.raft_index),
            str(sample.applied_index),
            human_bytes(sample.db_size),
            human_bytes(sample.db_size_in_use),
            sample.version,
        )
        member_id = f"{sample.member_id:x}"
    return (
        row.name,
        Text(row.role.value, style=_STYLES[row.role]),
        *(Text(number, style=style) for number in numbers),
        seen(row),
        Text(member_id, style=style),
    )


class MembersTable(DataTable[str | Text]):
    """Every member, refreshed in place after each poll (no flicker: cells change, rows stay)."""

    DEFAULT_CSS = """
    MembersTable {
        height: auto;
        max-height: 12;
    }
    """

    rows_shown: reactive[list[MemberRow]] = reactive(list, always_update=True)
    """The rows of the last poll, in endpoint order."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = False
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def watch_rows_shown(self, rows: list[MemberRow]) -> None:
        if not self.columns:
            return
        if [str(key.value) for key in self.rows] != [row.endpoint for row in rows]:
            self.clear()
            for row in rows:
                self.add_row(*cells(row), key=row.endpoint)
            return
        for row in rows:
            for (column, _), cell in zip(COLUMNS, cells(row), strict=True):
                self.update_cell(row.endpoint, column, cell, update_width=True)

    @property
    def selected(self) -> str | None:
        """The endpoint of the row under the cursor."""
        if not self.row_count:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
