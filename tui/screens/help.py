"""The help screen (``?``): every key, grouped, from the one table of controls (the TUI)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.controls import CONTROLS

INTRO = (
    "kv tui runs a simulated kv cluster: every number on screen is the simulator's. "
    "Crash the leader (r) and watch the others elect a new one; step (.) and step back (,) "
    "one event at a time; acting in the past forks a new timeline. 1-7 choose a node "
    "(the keys pane shows its state). Ctrl+P lists every action by name."
)


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    group = ""
    for control in CONTROLS:
        if control.group != group:
            group = control.group
            table.add_row(Text(group, style="bold underline"), "", "")
        table.add_row(f"  {control.shown}", control.description, control.help)
    return table


class HelpScreen(ModalScreen[None]):
    """Every key, grouped; escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 100%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(INTRO))
            yield Static(help_table())
