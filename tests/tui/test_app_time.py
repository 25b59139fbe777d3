"""Time travel from the keyboard and the mouse, driven by Textual's pilot: stepping back
restores the state (not just the position), clicking the scrubber goes there, acting in the
past forks and keeps the old timeline, a saved run reopens through ``kv tui --load``; and the
log matrix scrolls back over a long log."""

from __future__ import annotations

from pathlib import Path

from kv.cli import build_parser
from tests.tui.pilot import SEED, SIZE, paused_app
from tui.app import SimApp
from tui.command import make_app
from tui.session import actions
from tui.widgets.logs import LogsPanel
from tui.widgets.timeline import Timeline


async def test_stepping_back_restores_the_cluster_as_it_was() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        lines, now = app.session.cluster.event_lines(), app.session.now
        await pilot.press(*["full_stop"] * 8)
        assert app.session.cluster.event_lines() != lines
        await pilot.press(*["comma"] * 8)
        assert app.session.cluster.event_lines() == lines, f"seed {SEED}"
        assert app.session.now == now


async def test_clicking_the_scrubber_goes_to_that_point_of_the_run() -> None:
    app = paused_app()
    app.session.run_for(5_000)
    async with app.run_test(size=SIZE) as pilot:
        length = app.session.length
        await pilot.click(Timeline, offset=(3 + 10, 0))
        assert app.paused
        assert 0 < app.session.position < length / 2, (app.session.position, length)
        assert app.session.length == length, "looking back changes nothing"
        assert app.query_one(Timeline).state.position == app.session.position


async def test_acting_in_the_past_forks_and_the_first_timeline_keeps_its_future() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*["full_stop"] * 5)
        length = app.session.length
        await pilot.press(*["comma"] * 3, "k", "2")
        first, fork = app.session.timelines
        assert first.length == length and fork.length == length - 3 + 1
        assert not app.session.cluster.nodes[2].up
        await pilot.press("f", "1")
        assert app.session.position == length and app.session.cluster.nodes[2].up


async def test_kv_tui_load_opens_a_saved_run_where_it_was(tmp_path: Path) -> None:
    app = paused_app()
    app.session.act(actions.ClientPut("k", "v"))
    app.session.run_for(1_000)
    path = tmp_path / "run.json"
    app.session.save(path)
    loaded = make_app(build_parser().parse_args(["tui", "--load", str(path)]))
    assert isinstance(loaded, SimApp)
    assert loaded.session.position == app.session.position
    assert loaded.session.cluster.event_lines() == app.session.cluster.event_lines()


async def test_the_log_matrix_scrolls_back_to_the_first_entry_and_end_follows_again() -> None:
    app = paused_app()
    for i in range(60):
        app.session.act(actions.ClientPut(f"k{i}", "v"))
        app.session.run_for(50)
    app.session.run_for(2_000)
    async with app.run_test(size=SIZE) as pilot:
        logs = app.query_one(LogsPanel)
        assert logs.matrix.start > 1, "follows the tail of a long log"
        logs.focus()
        await pilot.press("home")
        assert logs.matrix.start == 1 and not logs.follow
        await pilot.press("right")
        assert logs.matrix.start > 1
        await pilot.press("end")
        assert logs.follow and logs.matrix.end == logs.highest + 1
