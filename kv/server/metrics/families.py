"""The metric families kv exposes, under etcd 3.4's names, types, help texts and labels
(chapter 10).

One table, `FAMILIES`, says what each family is; the collector
(`kv.server.metrics.collector`) fills them with values, and the differential test
(``tests/compat/test_metrics_differential.py``) checks every row against what the real etcd
3.4.23 serves on ``/metrics``. A dashboard or an alert rule written for etcd reads kv's
families unchanged. The ``process_*`` families come from prometheus-client's own
``ProcessCollector``, whose names and help texts are the Go client's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    """A family's Prometheus type, as its ``# TYPE`` line names it."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its ``# HELP`` text, ``# TYPE`` and label names, as etcd has them."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


def _families(*families: Family) -> dict[str, Family]:
    return {family.name: family for family in families}


C, G, H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM
GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")

# The texts are etcd's, byte for byte (etcdserver/metrics.go, wal/metrics.go,
# mvcc/metrics.go, mvcc/backend/metrics.go, rafthttp/metrics.go, etcdhttp/metrics.go, and
# go-grpc-prometheus for grpc_*). Note which are gauges in etcd though named ``_total``.
FAMILIES = _families(
    # -- the member and its leader (etcdserver/metrics.go)
    Family(
        "etcd_server_has_leader", G, "Whether or not a leader exists. 1 is existence, 0 is not."
    ),
    Family(
        "etcd_server_is_leader", G, "Whether or not this member is a leader. 1 if is, 0 otherwise."
    ),
    Family(
        "etcd_server_is_learner",
        G,
        "Whether or not this member is a learner. 1 if is, 0 otherwise.",
    ),
    Family("etcd_server_leader_changes_seen_total", C, "The number of leader changes seen."),
    Family(
        "etcd_server_proposals_committed_total",
        G,
        "The total number of consensus proposals committed.",
    ),
    Family(
        "etcd_server_proposals_applied_total", G, "The total number of consensus proposals applied."
    ),
    Family(
        "etcd_server_proposals_pending", G, "The current number of pending proposals to commit."
    ),
    Family("etcd_server_proposals_failed_total", C, "The total number of failed proposals seen."),
    Family("etcd_server_quota_backend_bytes", G, "Current backend storage quota size in bytes."),
    Family(
        "etcd_server_id",
        G,
        "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
        ("server_id",),
    ),
    Family(
        "etcd_server_version",
        G,
        "Which version is running. 1 for 'server_version' label with current version.",
        ("server_version",),
    ),
    Family(
        "etcd_cluster_version",
        G,
        "Which version is running. 1 for 'cluster_version' label with current cluster version",
        ("cluster_version",),
    ),
    Family("etcd_server_health_success", C, "The total number of successful health checks"),
    Family("etcd_server_health_failures", C, "The total number of failed health checks"),
    # -- the disk (wal/metrics.go, mvcc/backend/metrics.go)
    Family(
        "etcd_disk_wal_fsync_duration_seconds",
        H,
        "The latency distributions of fsync called by WAL.",
    ),
    Family(
        "etcd_disk_backend_commit_duration_seconds",
        H,
        "The latency distributions of commit called by backend.",
    ),
    # -- the store (mvcc/metrics.go)
    Family(
        "etcd_mvcc_db_total_size_in_bytes",
        G,
        "Total size of the underlying database physically allocated in bytes.",
    ),
    Family(
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        G,
        "Total size of the underlying database logically in use in bytes.",
    ),
    Family(
        "etcd_debugging_mvcc_db_total_size_in_bytes",
        G,
        "Total size of the underlying database physically allocated in bytes.",
    ),
    Family("etcd_debugging_mvcc_keys_total", G, "Total number of keys."),
    Family("etcd_debugging_mvcc_current_revision", G, "The current revision of store."),
    Family(
        "etcd_debugging_mvcc_compact_revision", G, "The revision of the last compaction in store."
    ),
    Family("etcd_debugging_mvcc_watcher_total", G, "Total number of watchers."),
    Family("etcd_debugging_mvcc_slow_watcher_total", G, "Total number of unsynced slow watchers."),
    # -- the peers (rafthttp/metrics.go); only with peers, as in etcd
    Family(
        "etcd_network_peer_sent_bytes_total", C, "The total number of bytes sent to peers.", ("To",)
    ),
    Family(
        "etcd_network_peer_received_bytes_total",
        C,
        "The total number of bytes received from peers.",
        ("From",),
    ),
    Family(
        "etcd_network_peer_round_trip_time_seconds",
        H,
        "Round-Trip-Time histogram between peers",
        ("To",),
    ),
    Family(
        "etcd_network_active_peers",
        G,
        "The current number of active peer connections.",
        ("Local", "Remote"),
    ),
    # -- gRPC (go-grpc-prometheus, which etcd registers on its client server)
    Family(
        "grpc_server_started_total", C, "Total number of RPCs started on the server.", GRPC_LABELS
    ),
    Family(
        "grpc_server_handled_total",
        C,
        "Total number of RPCs completed on the server, regardless of success or failure.",
        (*GRPC_LABELS, "grpc_code"),
    ),
    Family(
        "grpc_server_msg_received_total",
        C,
        "Total number of RPC stream messages received on the server.",
        GRPC_LABELS,
    ),
    Family(
        "grpc_server_msg_sent_total",
        C,
        "Total number of gRPC stream messages sent by the server.",
        GRPC_LABELS,
    ),
)

#: What prometheus-client's ``ProcessCollector`` adds: the Go client's process families.
PROCESS_FAMILIES = _families(
    Family("process_cpu_seconds_total", C, "Total user and system CPU time spent in seconds."),
    Family("process_max_fds", G, "Maximum number of open file descriptors."),
    Family("process_open_fds", G, "Number of open file descriptors."),
    Family("process_resident_memory_bytes", G, "Resident memory size in bytes."),
    Family(
        "process_start_time_seconds", G, "Start time of the process since unix epoch in seconds."
    ),
    Family("process_virtual_memory_bytes", G, "Virtual memory size in bytes."),
)
