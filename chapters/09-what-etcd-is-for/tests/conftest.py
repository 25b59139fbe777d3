"""Fixtures for chapter 9's tests: a real three-member kv cluster for the recipes' failure
cases (the recipes' unit tests use the root conftest's in-process member)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.processes import ProcessCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    """Three ``kv serve`` processes on free ports, with fast Raft timers."""
    started = ProcessCluster.create("kv", tmp_path, 3)
    started.start()
    yield started
    started.stop()
