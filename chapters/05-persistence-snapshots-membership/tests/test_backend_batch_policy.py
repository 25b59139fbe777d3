"""When the replica commits its backend's batch (`kv.server.replica.batching.BatchPolicy`):
etcd's interval and limit, with the time passed in. The end-to-end checks (a kill -9 with the
batch open, a snapshot never past the backend's commit) are in ``tests/crash``."""

from __future__ import annotations

import pytest

from kv.server.replica.batching import DEFAULT_INTERVAL_SECONDS, DEFAULT_LIMIT, BatchPolicy


def test_the_defaults_are_etcds_100ms_and_10000_writes() -> None:
    assert (DEFAULT_INTERVAL_SECONDS, DEFAULT_LIMIT) == (0.1, 10_000)
    assert BatchPolicy() == BatchPolicy(0.1, 10_000)


def test_zero_flags_mean_etcds_defaults() -> None:
    assert BatchPolicy.from_flags(0.0, 0) == BatchPolicy()


def test_given_flags_are_kept() -> None:
    assert BatchPolicy.from_flags(0.25, 500) == BatchPolicy(0.25, 500)


@pytest.mark.parametrize(
    ("now", "pending", "due"),
    [(2.25, 1, False), (2.5, 1, True), (9.0, 0, True), (2.0, 499, False), (2.0, 500, True)],
    ids=["within the interval", "interval up", "long after", "below the limit", "at the limit"],
)
def test_a_batch_is_due_when_the_interval_is_up_or_it_holds_the_limit(
    now: float, pending: int, due: bool
) -> None:
    assert BatchPolicy(0.5, 500).due(now, last_commit=2.0, pending_writes=pending) is due


def test_the_timer_waits_out_the_rest_of_the_interval() -> None:
    policy = BatchPolicy(0.5, 500)
    assert policy.wait(2.25, last_commit=2.0) == 0.25
    assert policy.wait(3.0, last_commit=2.0) == 0.0
