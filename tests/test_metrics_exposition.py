"""kv's metric values and text format, without a server (chapter 10's `kv.server.metrics`)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from kv.server.metrics.exposition import exposition, go_float
from kv.server.metrics.histogram import DISK_BUCKETS, Histogram


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (0, "0"),
        (-1, "-1"),
        (20480, "20480"),
        (2147483648, "2.147483648e+09"),
        (0.001, "0.001"),
        (8.192, "8.192"),
        (1e-05, "1e-05"),
        (float("inf"), "+Inf"),
    ],
)
def test_values_are_written_as_go_writes_them(value: float, text: str) -> None:
    assert go_float(value) == text


def test_an_observation_on_a_bound_counts_in_that_bucket() -> None:
    histogram = Histogram(DISK_BUCKETS)
    histogram.observe(0.001)
    histogram.observe(0.0015)
    assert histogram.cumulative()[:2] == [(0.001, 1), (0.002, 2)]
    assert histogram.cumulative()[-1] == (float("inf"), 2)


class _Families:
    def __init__(self, *metrics: Metric) -> None:
        self.metrics = metrics

    def collect(self) -> tuple[Metric, ...]:
        return self.metrics


def test_a_counter_without_total_is_written_under_its_own_name() -> None:
    health = GaugeMetricFamily("etcd_server_health_success", "The total", labels=[])
    health.type = "counter"
    health.add_metric([], 3)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(health))
    assert exposition(registry).decode() == (
        "# HELP etcd_server_health_success The total\n"
        "# TYPE etcd_server_health_success counter\n"
        "etcd_server_health_success 3\n"
    )
