"""Chapter 1's test setup: make `kv` importable, and show the Hypothesis seed of a failed run.

* ``--import-mode=importlib`` does not put the repository root on ``sys.path``, so a plain
  ``pytest`` (unlike ``python -m pytest``) cannot ``import kv`` unless the package is installed;
  we add the root when it is missing.
* Hypothesis prints the seed of a run only when a failure is flaky or the run stopped early. For
  an ordinary failure we add it to the report, so that ``pytest --hypothesis-seed=N`` replays
  the whole run (the printed falsifying example and ``@reproduce_failure`` replay the case).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]

if importlib.util.find_spec("kv") is None:
    sys.path.insert(0, str(REPOSITORY_ROOT))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        # Set by @given when Hypothesis chose the seed itself (None under --hypothesis-seed).
        seed = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_generated_seed", None)
        if seed is not None:
            report.sections.append(
                ("hypothesis seed", f"replay this run with: pytest --hypothesis-seed={seed}")
            )
    return report
