"""SVG snapshots of the main screens (pytest-textual-snapshot), from seed 7, paused, so that
they are stable: the main screen at 100x30 and at 80x24 (where the wire, safety and keys
panes become tabs), help, next-event mode, the inspector and the scenario picker.

``pytest tests/tui/test_app_snapshots.py --snapshot-update`` redraws them after a deliberate
change to the screen; look at the SVGs in ``__snapshots__`` before committing them.
"""

from __future__ import annotations

from typing import Any

from tests.tui.pilot import paused_app
from tui.app import SimApp


def busy_app() -> SimApp:
    """Seed 7 with a leader, two client puts applied and a message or two on the wire."""
    app = paused_app()
    app.session.act(_put("k0", "v1"))
    app.session.act(_put("k1", "v2"))
    app.session.run_for(300)
    return app


def _put(key: str, value: str) -> Any:
    from tui.session import actions

    return actions.ClientPut(key, value)


def test_main_screen_at_100x30(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), terminal_size=(100, 30))


def test_main_screen_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), terminal_size=(80, 24))


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), press=["question_mark"], terminal_size=(100, 30))


def test_next_event_screen(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), press=["n"], terminal_size=(100, 30))


def test_inspect_screen(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), press=["i"], terminal_size=(100, 30))


def test_scenario_picker(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), press=["s"], terminal_size=(100, 30))
