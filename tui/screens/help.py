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
    "Press r to crash the leader: the others' election timers run out, and they elect a "
    "new leader in a later term (watch NODES and WHAT HAPPENED; it comes back as a "
    "follower). Every number on screen is the simulator's. While votes or entries are on "
    "the wire the run goes slowly enough to follow a message (+ and - change that speed); "
    "quiet stretches, with only timers and heartbeats pending, fast-forward, and the status "
    "line says so. space pauses; . and , step one event forward and back; acting in the "
    "past forks a new timeline. s plays a narrated scenario. 1-7 choose a node. Ctrl+P "
    "lists every action by name."
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
