"""The chapter's demo runs, tells the story the chapter tells, and tells it the same way twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "demo.py"
ROOT = Path(__file__).resolve().parents[3]


def run_demo() -> str:
    done = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stdout


def test_the_demo_adds_a_learner_by_snapshot_promotes_it_and_removes_the_leader() -> None:
    output = run_demo()
    for expected in (
        "membership: add n4 as a learner: done",
        "n4 started with an empty log to join the cluster",
        "sent snapshot at index",
        "n4 restored snapshot at index",
        "membership: promote n4: done",
        "applied its own removal and shut down",
        "became leader at term 2",
    ):
        assert expected in output, f"{expected!r} not in:\n{output}"
    assert output.splitlines()[-1] == "k4 on every member: {1: 'v34', 2: 'v34', 4: 'v34'}"
    assert run_demo() == output, "the demo is not deterministic"
