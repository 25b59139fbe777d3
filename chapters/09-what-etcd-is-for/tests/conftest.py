"""Fixtures for chapter 9's tests: a real three-member kv cluster for the recipes' failure
cases, and `open_session` (`tests.recipes.sessions`) for the recipes' tests against the root
conftest's in-process member."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.processes import ProcessCluster
from tests.recipes.sessions import open_session

__all__ = ["cluster", "open_session"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    """Three ``kv serve`` processes on free ports, with fast Raft timers."""
    started = ProcessCluster.create("kv", tmp_path, 3)
    started.start()
    yield started
    started.stop()
