"""Helpers for the TUI's pilot tests: an app over a seeded session on the TUI's own network
(`tui.speed.tui_config`, as ``kv tui`` runs it), paused, so that every change on screen comes
from the key under test (the timer does not advance a paused run)."""

from __future__ import annotations

from tui.app import SimApp
from tui.session import Session
from tui.speed import tui_config

SEED = 7
SIZE = (100, 30)


def paused_app(nodes: int = 3, seed: int = SEED) -> SimApp:
    """An app over a fresh session that already has its first leader, paused."""
    return SimApp(Session.new(nodes=nodes, seed=seed, config=tui_config()), run=False)
