"""The TUI's other screens and dialogs, one per module: the pickers the "..." keys open, help,
next-event mode, the inspector, scenarios, timelines, saving a trace (the TUI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.app import SimApp


def open_screen(app: SimApp, name: str) -> None:
    """Open screen ``name`` ("help", "next_event", ...) over the app."""
    if name == "help":
        from tui.screens.help import HelpScreen

        app.push_screen(HelpScreen())
    else:
        app.notify(f"{name}: not available", severity="warning")
