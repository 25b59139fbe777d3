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
    elif name == "next_event":
        from tui.screens.next_event import NextEventScreen

        app.push_screen(NextEventScreen(app), lambda _: app.refresh_view())
    elif name == "inspect":
        from tui.screens.inspect import InspectScreen

        app.push_screen(InspectScreen(app))
    elif name == "timelines":
        _timelines(app)
    elif name == "save":
        from tui.screens.ask import AskScreen

        # The trace (`tui.session.trace`): seed, nodes, configuration and every action on
        # every timeline, which ``kv tui --load`` opens again exactly as it was.
        default = f"kv-tui-seed{app.session.seed}.json"
        question = "Save the run to (enter saves, escape cancels):"
        app.push_screen(AskScreen(question, default), app.save_trace)
    elif name == "scenarios":
        from tui.screens.scenarios import open_scenarios

        open_scenarios(app)


def _timelines(app: SimApp) -> None:
    from tui.screens.choice import Choice, ChoiceScreen

    session = app.session
    choices = []
    for index, timeline in enumerate(session.timelines):
        origin = (
            "the first"
            if timeline.parent is None
            else (f"forked from {timeline.parent + 1} at entry {timeline.forked_at}")
        )
        here = " (you are here)" if index == session.current else ""
        label = f"timeline {index + 1}: {origin}, {timeline.length} entries{here}"
        choices.append(Choice(label, index, str(index + 1) if index < 9 else ""))

    def switch(index: int | None) -> None:
        if index is not None:
            app.paused = True
            session.switch(index)
            app.jumped()

    app.push_screen(ChoiceScreen("Timelines (acting in the past forks one)", choices), switch)
