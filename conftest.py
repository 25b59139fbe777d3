"""Test setup shared by every suite: show the Hypothesis seed of a failed run.

Hypothesis prints the seed of a run only when a failure is flaky or the run stopped early. For
an ordinary failure we add it to the report, so that ``pytest --hypothesis-seed=N`` replays the
whole run (the printed falsifying example and ``@reproduce_failure`` replay the single case).
"""

from __future__ import annotations

from collections.abc import Generator

import pytest


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
