"""``kv serve``'s tuning of Python's cycle collector (`kv.server.collector`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from kv.server import collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """Whatever a test does to the collector, the next one finds Python's settings."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_collector")
def test_serving_raises_only_the_young_generations_threshold() -> None:
    _, middle, old = gc.get_threshold()
    collector.tune_for_serving()
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, middle, old)


@pytest.mark.usefixtures("restored_collector")
def test_what_start_up_made_is_frozen_once_the_member_serves() -> None:
    async def scenario() -> tuple[int, int]:
        ready = asyncio.Event()
        freezing = asyncio.create_task(collector.freeze_once_serving(ready))
        await asyncio.sleep(0)
        before = gc.get_freeze_count()
        ready.set()
        await freezing
        return before, gc.get_freeze_count()

    before, after = asyncio.run(scenario())
    assert before == 0
    assert after > 0
