"""A latency histogram the driver fills and a scrape reads: counts per bucket and a sum
(chapter 10).

Prometheus' client keeps its own histograms behind a lock and adds a ``_created`` series that
etcd's Go client does not have. kv's hot paths (the WAL's fsync, the backend's commit) only
need a bisect and two additions, so they fill this plain value, and the member's collector
(`kv.server.metrics.collector`) turns it into a Prometheus histogram family when scraped.
Nothing here is shared between members: each owns its histograms.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Go's ``prometheus.ExponentialBuckets``: ``count`` upper bounds from ``start``."""
    return tuple(start * factor**i for i in range(count))


#: etcd's WAL fsync and backend commit buckets: 1 ms to 8.192 s (``ExponentialBuckets(0.001,
#: 2, 14)`` in etcd's wal/metrics.go and mvcc/backend/metrics.go).
DISK_BUCKETS = exponential_buckets(0.001, 2, 14)
#: etcd's peer round-trip buckets: 0.1 ms to 3.2768 s (rafthttp/metrics.go).
ROUND_TRIP_BUCKETS = exponential_buckets(0.0001, 2, 16)


@dataclass(slots=True)
class Histogram:
    """Observations counted into buckets with upper bounds ``bounds`` (+Inf is implied)."""

    bounds: tuple[float, ...]
    #: Observations per bucket, not cumulative; the last one is the +Inf bucket.
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs in that bound's bucket (le means <=).
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @contextmanager
    def time(self) -> Iterator[None]:
        """Observe how long the ``with`` block took (wall clock, as etcd's ``time.Since``)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - started)

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)`` for each bucket, ending with +Inf."""
        running = 0
        buckets = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets
