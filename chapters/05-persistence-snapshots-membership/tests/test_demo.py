"""The chapter's demo runs, tells the story the chapter tells, and tells it the same way twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "demo.py"
CHAPTER = Path(__file__).resolve().parents[1] / "chapter.md"
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


def quoted_output() -> list[str]:
    """The lines of the chapter's ``text title="demo.py output"`` blocks."""
    lines: list[str] = []
    inside = False
    for line in CHAPTER.read_text(encoding="utf-8").splitlines():
        if line.startswith('```text title="demo.py output"'):
            inside = True
        elif line.startswith("```"):
            inside = False
        elif inside and line.strip():
            lines.append(line)
    return lines


def test_the_chapter_quotes_the_demo_as_it_prints() -> None:
    output = run_demo().splitlines()
    quoted = quoted_output()
    assert len(quoted) > 40
    missing = [line for line in quoted if line not in output]
    assert not missing, f"the chapter quotes lines the demo no longer prints: {missing}"
