"""The chapter's demo: it runs, ends with a linearizable history, and prints what the page says.

``chapters/04-log-replication/demo.py`` drives the simulator through four acts and checks the
clients' history with `kv.linearizability`. The page quotes its output in blocks titled
``demo.py output``; the last test holds the demo to those quotes, so that a change in the
core or the simulator that changes the story also shows up here (update the page with it).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from tests import demos

CHAPTER = Path(__file__).parents[1]
QUOTE = re.compile(r'^```text title="demo\.py output"\n(.*?)^```', re.MULTILINE | re.DOTALL)


def load_demo() -> ModuleType:
    return demos.load_demo(CHAPTER)


def run_demo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[object, str]:
    outcome = load_demo().main(list(argv))
    return outcome, capsys.readouterr().out


def test_the_demo_ends_with_a_linearizable_history_and_members_that_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = load_demo()
    outcome, out = run_demo(capsys)
    assert outcome.seed == demo.SEED
    assert outcome.result.linearizable, f"{out}\n{outcome.result}"
    assert outcome.converged, out
    assert out.rstrip().endswith(f"{outcome.requests} requests: linearizable (seed {demo.SEED})")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_demo_works_with_other_seeds(capsys: pytest.CaptureFixture[str], seed: int) -> None:
    outcome, out = run_demo(capsys, "--seed", str(seed))
    assert outcome.result.linearizable and outcome.converged, out


def test_the_demo_tells_the_same_story_at_every_run(capsys: pytest.CaptureFixture[str]) -> None:
    _, first = run_demo(capsys)
    _, second = run_demo(capsys)
    assert first == second


def test_the_demo_prints_what_the_chapter_quotes(capsys: pytest.CaptureFixture[str]) -> None:
    """Every line of every quoted block appears in the output, in the block's order."""
    quotes = QUOTE.findall((CHAPTER / "chapter.md").read_text())
    assert len(quotes) >= 5, "the chapter quotes the demo's output in several places"
    _, out = run_demo(capsys)
    lines = out.splitlines()
    for quote in quotes:
        position = 0
        for line in quote.splitlines():
            if line.strip() == "...":
                continue
            assert line in lines[position:], (
                f"the chapter quotes a line the demo no longer prints in this order:\n{line}"
            )
            position = lines.index(line, position) + 1
