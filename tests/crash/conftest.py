"""Fixtures of the crash tests: the seed of a run, shown in the report of a failed test."""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator

import pytest

from tests.crash.harness import SEED_ENV

_SEED = pytest.StashKey[int]()


@pytest.fixture
def crash_seed(request: pytest.FixtureRequest) -> int:
    """``KV_CRASH_SEED`` if set, else a fresh random seed (every run explores a new plan)."""
    text = os.environ.get(SEED_ENV)
    seed = int(text) if text else secrets.randbelow(2**32)
    request.node.stash[_SEED] = seed
    return seed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed and _SEED in item.stash:
        seed = item.stash[_SEED]
        report.sections.append(
            ("crash seed", f"replay this plan with: {SEED_ENV}={seed} pytest {item.nodeid}")
        )
    return report
