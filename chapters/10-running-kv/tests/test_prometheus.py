"""Chapter 10: a real Prometheus watching a three-member cluster with etcd's alert rules, the
real etcd's and kv's side by side.

Each member serves its metrics on ``--listen-metrics-urls``. Prometheus scrapes the three as
one job and evaluates the rules of ``chapters/10-running-kv/prometheus/alerts.yml`` (etcd's
published alerts) every second. A healthy cluster: every target up, every member with a
leader, every rule evaluated without error, no alert. Then two of the three members are
killed: the survivor has no leader, so ``etcdNoLeader`` (for it) and
``etcdInsufficientMembers`` become pending at once (firing would take their ``for:``, one and
three minutes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.processes import ProcessCluster
from tests.compat.http_endpoints import with_metrics_url
from tests.compat.servers import ServerKind
from tests.prometheus import NotYet, Prometheus, require_prometheus

pytestmark = pytest.mark.etcd

RULES = Path(__file__).resolve().parents[1] / "prometheus" / "alerts.yml"


@pytest.fixture(params=["etcd", "kv"])
def watched(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ProcessCluster, Prometheus]]:
    """A 3-member cluster of the kind, each member with a metrics URL, and a Prometheus."""
    require_prometheus()
    kind: ServerKind = request.param
    cluster = ProcessCluster.create(kind, tmp_path / "cluster", 3)
    metrics = [with_metrics_url(member).removeprefix("http://") for member in cluster.members]
    prometheus = Prometheus(tmp_path / "prometheus", metrics, RULES, job=f"{kind}-etcd")
    try:
        cluster.start()
        prometheus.start()
        yield cluster, prometheus
    finally:
        prometheus.stop()
        cluster.stop()


def healthy(prometheus: Prometheus) -> dict[str, float]:
    up = prometheus.query("up")
    has_leader = prometheus.query("etcd_server_has_leader")
    if len(up) != 3 or set(up.values()) != {1.0} or set(has_leader.values()) != {1.0}:
        raise NotYet(f"up {up}, has_leader {has_leader}")
    return has_leader


def test_etcds_alert_rules_watch_a_cluster_and_fire_when_it_loses_its_quorum(
    watched: tuple[ProcessCluster, Prometheus],
) -> None:
    cluster, prometheus = watched
    assert len(prometheus.wait_until(lambda: healthy(prometheus), "a healthy cluster")) == 3
    rules = prometheus.wait_until(prometheus.rules_evaluated, "every rule evaluated")
    assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules] == [
        (r["name"], "ok", "") for r in rules
    ]
    assert prometheus.alerts() == set()

    for member in cluster.members[1:]:  # the first member survives
        cluster.kill(member)
    expected = {
        ("etcdNoLeader", "pending", prometheus.targets[0]),  # the first member's
        ("etcdInsufficientMembers", "pending", ""),
    }
    prometheus.wait_until(
        lambda: expected <= prometheus.alerts() or None, f"alerts {sorted(expected)}"
    )
