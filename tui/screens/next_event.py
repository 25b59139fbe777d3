"""Choose-the-next-event mode (``n``), as DSLabs' visual debugger: the pending messages and
timers as a table; deliver, drop, duplicate or delay the selected one by hand (the TUI).

Each choice is an action on the session's timeline (`tui.session.actions.Deliver`, ...), so
it replays, forks and saves like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label

from tui.session import actions

if TYPE_CHECKING:
    from tui.app import SimApp

#: How much ``y`` delays the selected task (virtual ms).
DELAY_MS = 100


class NextEventScreen(ModalScreen[None]):
    """The pending tasks, earliest first; the keys act on the selected row."""

    DEFAULT_CSS = """
    NextEventScreen { align: center middle; }
    NextEventScreen > Vertical {
        width: 96; max-width: 100%; height: 90%;
        border: round $accent; background: $surface;
    }
    NextEventScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d,enter", "choose('deliver')", "deliver now"),
        Binding("x", "choose('drop')", "drop"),
        Binding("u", "choose('duplicate')", "duplicate"),
        Binding("y", "choose('delay')", f"delay {DELAY_MS}ms"),
        Binding("full_stop", "next", "the simulator's next"),
        Binding("escape,n", "dismiss", "close"),
    ]

    def __init__(self, app: SimApp) -> None:
        super().__init__()
        self.sim = app

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("NEXT EVENT: pick what happens next (the run is paused)")
            yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sim.paused = True
        table = self.query_one(DataTable)
        table.add_columns("id", "at ms", "kind", "from", "to", "what")
        self.fill()

    def fill(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for task in self.sim.session.pending():
            frm = f"n{task.frm}" if task.frm else ""
            table.add_row(
                str(task.id),
                str(task.time_ms),
                task.kind,
                frm,
                f"n{task.to}",
                task.summary,
                key=str(task.id),
            )
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def selected(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    def action_choose(self, what: str) -> None:
        task = self.selected()
        if task is None:
            return
        choices: dict[str, actions.Action] = {
            "deliver": actions.Deliver(task),
            "drop": actions.Drop(task),
            "duplicate": actions.Duplicate(task),
            "delay": actions.Delay(task, DELAY_MS),
        }
        self.sim.do(choices[what])
        self.fill()

    def action_next(self) -> None:
        self.sim.action_step()
        self.fill()
