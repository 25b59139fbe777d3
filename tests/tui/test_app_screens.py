"""The keys that open a screen -- next event, inspect, timelines, save, scenarios, help, the
command palette -- and the safety freeze, driven by Textual's pilot: each test checks the
change on the session, or on the screen where the screen is the point."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from kv.raft import MessageType, Role
from tests.tui.pilot import SEED, SIZE, paused_app
from tests.tui.test_session_next_event import campaigning, first_message
from tui.app import SimApp
from tui.screens.help import HelpScreen
from tui.screens.inspect import InspectScreen
from tui.screens.next_event import NextEventScreen
from tui.session import Session, actions
from tui.widgets.safety import SafetyPanel
from tui.widgets.status import StatusLine


async def test_n_opens_next_event_mode_and_d_delivers_the_selected_task_now() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NextEventScreen)
        first = app.session.pending()[0].id
        await pilot.press("d")
        assert first not in [p.id for p in app.session.pending()]
        assert "deliver #" in app.session.cluster.event_lines()[-1] or any(
            "deliver #" in line for line in app.session.cluster.event_lines()[-5:]
        )


async def test_next_event_x_drops_the_selected_message() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    app = SimApp(session, run=False, warm_up=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(str(vote.id)))
        dropped = session.cluster.network.dropped[MessageType.VOTE]
        await pilot.press("x")
        assert vote.id not in [p.id for p in app.session.pending()]
        assert app.session.cluster.network.dropped[MessageType.VOTE] == dropped + 1


async def test_next_event_y_delays_and_u_duplicates_the_selected_task() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        task = app.session.pending()[0]
        await pilot.press("y")
        moved = next(p for p in app.session.pending() if p.id == task.id)
        assert moved.time_ms == task.time_ms + 100
        messages = [p for p in app.session.pending() if p.is_message]
        if messages:
            table = app.screen.query_one(DataTable)
            table.move_cursor(row=table.get_row_index(str(messages[0].id)))
            before = len(app.session.pending())
            await pilot.press("u")
            assert len(app.session.pending()) == before + 1


async def test_a_violation_freezes_the_run_and_the_safety_panel_names_it() -> None:
    session = campaigning()
    session.act(actions.Cut.of([1], [3]))
    vote = first_message(session, MessageType.VOTE, 3, 2)
    session.act(actions.Delay(vote.id, 5_000))
    while session.cluster.nodes[1].role is not Role.LEADER:
        assert session.step(), f"seed {SEED}"
    session.act(actions.Amnesia(2))
    app = SimApp(session, run=False, warm_up=False)
    async with app.run_test(size=SIZE) as pilot:
        app.do(actions.Deliver(vote.id))
        await pilot.press("space")  # run: the timer takes the run into the violation
        for _ in range(200):
            if app.session.frozen is not None:
                break
            await pilot.pause(0.05)
        frozen = app.session.frozen
        assert frozen is not None, f"seed {SEED}"
        position = app.session.position
        await pilot.pause(0.2)
        assert app.session.position == position, "a frozen run does not go on"
        assert app.query_one(StatusLine).status.state == "FROZEN"
        panel = app.query_one("#safety-wide", SafetyPanel)
        assert [p.property.value for p in panel.properties if not p.holds] == ["Election Safety"]


async def test_i_opens_the_inspector_on_the_selected_node() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "i")
        assert isinstance(app.screen, InspectScreen)
        assert app.screen.query_one("#inspect-node").query("Static")


async def test_acting_in_the_past_forks_and_f_switches_back_to_the_first_timeline() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("comma", "comma", "c")
        assert len(app.session.timelines) == 2 and app.session.current == 1
        await pilot.press("f", "1")
        assert app.session.current == 0


async def test_w_saves_a_trace_that_loads_back_at_the_same_place(tmp_path: Path) -> None:
    app = paused_app()
    path = tmp_path / "run.json"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "full_stop", "w")
        await pilot.press(*["backspace"] * 40)
        await pilot.press(*str(path))
        await pilot.press("enter")
    loaded = Session.load(path)
    assert loaded.position == app.session.position
    assert loaded.cluster.event_lines() == app.session.cluster.event_lines()


async def test_s_starts_a_scenario_that_pauses_at_its_first_step() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "1")
        assert app.session.scenario is not None or app.session.cue is not None
        app.session.run_for(10_000)  # stops at the step's pause, however fast the timer runs
        app.refresh_view()
        assert app.at_cue, f"seed {app.session.seed}"
        assert "step 1 of" in app.query_one(StatusLine).status.cue
        await pilot.press("space")  # goes on: step 1's pause is over (a later step may pause)
        cue = app.session.cue
        assert cue is None or cue.number > 1


async def test_question_mark_opens_help_listing_every_key() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_command_palette_runs_an_action_by_name() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        leader = app.session.cluster.leader()
        assert leader is not None
        await pilot.press("ctrl+p")
        await pilot.press(*"restart leader")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert not app.session.cluster.nodes[leader].up
