"""Chapter 10's test settings: the front's and the RPC counts' tests run on both event loops.

``kv serve`` runs on uvloop, whose transports are not asyncio's (they are not even
subclasses), and the front hands transports from protocol to protocol: so each of its tests
runs on asyncio's loop and on uvloop's (pytest-asyncio's loop-factory hook).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop

BOTH_LOOPS_MODULES = {"test_front.py", "test_grpc_counts.py"}


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    if item.path.name in BOTH_LOOPS_MODULES:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return None  # everything else: pytest-asyncio's default loop
