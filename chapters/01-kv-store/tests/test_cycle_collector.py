"""``kv serve``'s tuning of Python's cycle collector (`kv.server.cycle_collector`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kv.server import cycle_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """Whatever a test does to the collector, the next one finds Python's settings."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_serving_raises_only_the_young_generations_threshold() -> None:
    _, middle, old = gc.get_threshold()
    cycle_collector.tune_for_serving()
    assert gc.get_threshold() == (cycle_collector.YOUNG_THRESHOLD, middle, old)
