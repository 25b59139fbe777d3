"""A member's metrics: its own registry, filled from the driver when Prometheus scrapes
(chapter 10).

etcd's metrics are package globals of its Go processes. kv keeps none: `member_registry`
makes a ``CollectorRegistry`` per member (never prometheus-client's default ``REGISTRY``), so
two members in one process, as in the tests, report separately. What it holds is read from
the objects that already keep the numbers, at scrape time:

* the Raft loop (`kv.server.replica.replica.Replica`): leader, role, committed and applied
  index, leader changes, the backend's commit latency; its disk (`RaftDisk`): the WAL's
  fsync latency; its clients' proposals (`Proposals`): pending and failed;
* the state machine: the backend's size, the number of keys, the revisions, the alarms'
  quota; the watch hub: watchers;
* the peer transport: bytes to and from each peer, round-trip times, connected peers;
* the client gRPC servers' counted handlers (`kv.server.metrics.grpc_metrics.RpcCounter`) and the
  ``/health`` handler (`HealthCounts`).

Nothing is counted inside the sans-IO cores (kv/raft, kv/mvcc, kv/lease, kv/watch): the
driver times and counts what it does with them, as etcd's server does around its raft node.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from kv.server.metrics.exposition import go_float
from kv.server.metrics.families import FAMILIES, Kind
from kv.server.metrics.grpc_metrics import RpcCounter
from kv.server.metrics.histogram import Histogram

if TYPE_CHECKING:
    from kv.server.requests.server import Server

#: The version kv's members report as etcd's ``server_version`` (Status's, too).
SERVER_VERSION = "3.4.0"


@dataclass(slots=True)
class HealthCounts:
    """``/health`` answers, counted as etcd counts them (`kv.server.http.health`)."""

    success: int = 0
    failures: int = 0


def family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    """An empty counter or gauge family: the type, help text and labels `FAMILIES` gives."""
    spec = FAMILIES[name]
    if spec.kind is Kind.COUNTER and name.endswith("_total"):
        # prometheus-client adds the "_total" of a counter's samples itself.
        return CounterMetricFamily(name.removesuffix("_total"), spec.help, labels=spec.labels)
    metric = GaugeMetricFamily(name, spec.help, labels=spec.labels)
    # etcd's health counters have no "_total": samples named as the family, typed counter
    # (`kv.server.metrics.exposition` writes them so).
    metric.type = spec.kind.value
    return metric


def histogram_family(name: str) -> HistogramMetricFamily:
    spec = FAMILIES[name]
    assert spec.kind is Kind.HISTOGRAM, name
    return HistogramMetricFamily(name, spec.help, labels=spec.labels)


def one_sample(name: str, value: float, labels: Sequence[str] = ()) -> Metric:
    """A family with one sample: ``value``, with ``labels`` as its label values."""
    metric = family(name)
    metric.add_metric(list(labels), value)
    return metric


def add_histogram(
    metric: HistogramMetricFamily, labels: Sequence[str], histogram: Histogram
) -> None:
    buckets = [(go_float(bound), count) for bound, count in histogram.cumulative()]
    metric.add_metric(list(labels), buckets, histogram.total)


class MemberCollector:
    """The families of one member, read from ``server`` and its driver at each scrape."""

    def __init__(self, server: Server, rpcs: RpcCounter, health: HealthCounts) -> None:
        self.server = server
        self.rpcs = rpcs
        self.health = health

    def collect(self) -> Iterator[Metric]:
        yield from self._server()
        yield from self._disk()
        yield from self._store()
        yield from self._peers()
        yield from self._grpc()

    def _server(self) -> Iterator[Metric]:
        server, replica = self.server, self.server.replica
        yield one_sample("etcd_server_has_leader", 1 if replica.leader else 0)
        yield one_sample("etcd_server_is_leader", 1 if replica.is_leader else 0)
        yield one_sample("etcd_server_is_learner", 1 if replica.is_learner else 0)
        yield one_sample("etcd_server_leader_changes_seen_total", replica.leaders_seen)
        yield one_sample("etcd_server_proposals_committed_total", replica.commit_index)
        yield one_sample("etcd_server_proposals_applied_total", replica.applied)
        yield one_sample("etcd_server_proposals_pending", replica.proposals.pending)
        yield one_sample("etcd_server_proposals_failed_total", replica.proposals.failed)
        yield one_sample("etcd_server_quota_backend_bytes", server.quota_bytes)
        yield one_sample("etcd_server_id", 1, [f"{replica.member_id:x}"])
        yield one_sample("etcd_server_version", 1, [SERVER_VERSION])
        cluster_version = replica.members.cluster_version
        if cluster_version:  # etcd sets it once the cluster version is decided: "3.4"
            major_minor = ".".join(cluster_version.split(".")[:2])
            yield one_sample("etcd_cluster_version", 1, [major_minor])
        yield one_sample("etcd_server_health_success", self.health.success)
        yield one_sample("etcd_server_health_failures", self.health.failures)

    def _disk(self) -> Iterator[Metric]:
        replica = self.server.replica
        for name, histogram in (
            ("etcd_disk_wal_fsync_duration_seconds", replica.disk.fsync_seconds),
            ("etcd_disk_backend_commit_duration_seconds", replica.backend_commit_seconds),
        ):
            metric = histogram_family(name)
            add_histogram(metric, [], histogram)
            yield metric

    def _store(self) -> Iterator[Metric]:
        server = self.server
        backend, store, watches = server.backend, server.store, server.replica.watches
        size = backend.size_bytes
        yield one_sample("etcd_mvcc_db_total_size_in_bytes", size)
        yield one_sample("etcd_debugging_mvcc_db_total_size_in_bytes", size)
        yield one_sample("etcd_mvcc_db_total_size_in_use_in_bytes", backend.size_in_use_bytes)
        # etcd keeps a live count; kv counts the keys of its index when asked (every key is
        # in [b"\0", ...): etcd's "from the first key" range).
        keys = store.range(b"\0", b"\0", count_only=True).count
        yield one_sample("etcd_debugging_mvcc_keys_total", keys)
        yield one_sample("etcd_debugging_mvcc_current_revision", store.current_revision)
        yield one_sample("etcd_debugging_mvcc_compact_revision", store.compact_revision)
        yield one_sample("etcd_debugging_mvcc_watcher_total", len(watches.synced) + watches.behind)
        yield one_sample("etcd_debugging_mvcc_slow_watcher_total", watches.behind)

    def _peers(self) -> Iterator[Metric]:
        """Per peer, as etcd's rafthttp labels them: by member id in hex (``From="0"`` is
        etcd's for bytes from a peer not yet identified; kv's peers say who they are)."""
        transport = self.server.replica.transport
        local = f"{transport.member_id:x}"
        sent = family("etcd_network_peer_sent_bytes_total")
        received = family("etcd_network_peer_received_bytes_total")
        round_trip = histogram_family("etcd_network_peer_round_trip_time_seconds")
        active = family("etcd_network_active_peers")
        for member_id, count in sorted(transport.sent_bytes.items()):
            sent.add_metric([f"{member_id:x}"], count)
        for member_id, count in sorted(transport.received_bytes.items()):
            received.add_metric([f"{member_id:x}"], count)
        for member_id, histogram in sorted(transport.round_trip.items()):
            add_histogram(round_trip, [f"{member_id:x}"], histogram)
        for member_id in sorted(transport.connected()):
            active.add_metric([local, f"{member_id:x}"], 1)
        yield from _with_samples((sent, received, round_trip, active))

    def _grpc(self) -> Iterator[Metric]:
        started = family("grpc_server_started_total")
        handled = family("grpc_server_handled_total")
        received = family("grpc_server_msg_received_total")
        sent = family("grpc_server_msg_sent_total")
        for counts in sorted(self.rpcs.methods.values(), key=lambda c: (c.service, c.method)):
            labels = list(counts.labels)
            started.add_metric(labels, counts.started)
            received.add_metric(labels, counts.received)
            sent.add_metric(labels, counts.sent)
            for code, count in sorted(counts.handled.items()):
                handled.add_metric([*labels, code], count)
        yield from (started, handled, received, sent)


def _with_samples(metrics: Iterable[Metric]) -> Iterator[Metric]:
    """Families that have a sample: as the Go client, which shows no empty labelled family
    (a member alone has no peer families at all)."""
    return (metric for metric in metrics if metric.samples)


def member_registry(server: Server, rpcs: RpcCounter, health: HealthCounts) -> CollectorRegistry:
    """A registry of its own for the member ``server``: its families and the process's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MemberCollector(server, rpcs, health))
    ProcessCollector(registry=registry)
    return registry
