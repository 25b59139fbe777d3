"""``kv tui --seed 7`` in a real terminal (tmux at 100x30): the screen shows n1, n2, n3, the
word LEADER and each node's term; ``r`` restarts the leader and a leader of a later term
shows up. The 10 s poll waits for a real program to draw, not for our code to be right."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"n(\d)\s+(LEADER|follower|pre-candidate|candidate|learner|DOWN)\s+term (\d+)")

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def _screen(socket: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, "capture-pane", "-p", "-t", "tui"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _wait_for(socket: str, check: object, seconds: float) -> str:
    assert callable(check)
    deadline = time.monotonic() + seconds
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(socket)
        if check(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"not seen within {seconds}s; the screen was:\n{screen}")


def _leader_term(screen: str) -> int | None:
    terms = [int(term) for _, role, term in ROW.findall(screen) if role == "LEADER"]
    return max(terms) if terms else None


def test_kv_tui_shows_a_leader_and_elects_a_new_one_after_r() -> None:
    socket = f"kv-tui-test-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m kv tui --seed 7"
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-x", "100", "-y", "30", "-s", "tui"],
        check=True,
        env=env,
        cwd=ROOT,
    )
    try:
        subprocess.run(
            ["tmux", "-L", socket, "send-keys", "-t", "tui", f"cd {ROOT} && {command}", "Enter"],
            check=True,
        )
        screen = _wait_for(socket, lambda s: _leader_term(s) is not None, 10)
        rows = {node: term for node, _, term in ROW.findall(screen)}
        assert set(rows) == {"1", "2", "3"}, screen
        first = _leader_term(screen)
        assert first is not None
        subprocess.run(["tmux", "-L", socket, "send-keys", "-t", "tui", "r"], check=True)
        _wait_for(socket, lambda s: (_leader_term(s) or 0) > first, 10)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
