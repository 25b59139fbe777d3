"""Scenarios (``s``): pick one of `tui.session.scenarios` -- leader crash, split vote, Figure
8's partitioned leader with and without PreVote/CheckQuorum, a follower caught up by
snapshot, a learner promoted, the leader removed, a lease across a leader change -- and it
runs on a fresh cluster, its steps narrated in the event log and the status line, pausing
where the chapter would (space goes on). Steps fire on the model's events, never on the wall
clock (the TUI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.screens.choice import Choice, ChoiceScreen
from tui.session import Session
from tui.session.scenarios import SCENARIOS, Scenario

if TYPE_CHECKING:
    from tui.app import SimApp


def scenario_choices() -> list[Choice[Scenario]]:
    return [Choice(s.title, s, s.key) for s in SCENARIOS.values()]


def open_scenarios(app: SimApp) -> None:
    def start(scenario: Scenario | None) -> None:
        if scenario is not None:
            app.replace_session(Session.for_scenario(scenario))

    app.push_screen(
        ChoiceScreen("Scenarios (each runs on a new cluster)", scenario_choices()), start
    )
