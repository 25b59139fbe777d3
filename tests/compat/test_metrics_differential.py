"""``/metrics`` beside the real etcd 3.4: every family kv has is etcd's, with the same type,
help text and label names, so etcd's dashboards and alert rules read kv unchanged.

Both servers get a ``--listen-metrics-urls`` URL and take one put first. The families kv
deliberately lacks are listed in `LACKS`, each with why; the test fails both ways: a family
kv shows that etcd does not, or one of etcd's that kv neither has nor lists. Peer families
(``etcd_network_*``) exist only with peers: a 3-member pair of clusters checks those.
What was verified by hand against etcd 3.4.23, and is not a test, is in ``HTTP-FACTS.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kv.client import KVClient
from tests.compat.clusters import cluster_pair
from tests.compat.http_endpoints import (
    FamilyShape,
    families,
    first_members_metrics_url,
    get,
    with_metrics_url,
)
from tests.compat.servers import Server, free_ports, start_all

pytestmark = pytest.mark.etcd

#: The Content-Type both serve /metrics with (Prometheus' text format 0.0.4).
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def _lacks(reason: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


#: etcd's families (one member) that kv does not have, and why.
LACKS = {
    **_lacks(
        "Go runtime and Go client internals: kv is Python",
        "etcd_server_go_version",
        "promhttp_metric_handler_requests_in_flight",
        "promhttp_metric_handler_requests_total",
        "process_virtual_memory_max_bytes",  # Go's client reads it from /proc; Python's not
        "os_fd_limit",
        "os_fd_used",
    ),
    **_lacks(
        "bbolt internals: kv's backend is SQLite (chapter 2), one commit per Ready",
        "etcd_debugging_disk_backend_commit_rebalance_duration_seconds",
        "etcd_debugging_disk_backend_commit_spill_duration_seconds",
        "etcd_debugging_disk_backend_commit_write_duration_seconds",
        "etcd_mvcc_db_open_read_transactions",
    ),
    **_lacks(
        "the v2 store, the gRPC proxy and auth: kv has none of them",
        "etcd_debugging_store_expires_total",
        "etcd_debugging_store_reads_total",
        "etcd_debugging_store_watch_requests_total",
        "etcd_debugging_store_watchers",
        "etcd_debugging_store_writes_total",
        "etcd_grpc_proxy_cache_hits_total",
        "etcd_grpc_proxy_cache_keys_total",
        "etcd_grpc_proxy_cache_misses_total",
        "etcd_grpc_proxy_events_coalescing_total",
        "etcd_grpc_proxy_watchers_coalescing_total",
        "etcd_debugging_auth_revision",
    ),
    **_lacks(
        "per-operation counters in the apply path: not yet counted (no dashboard alert reads "
        "them; grpc_server_handled_total counts the same requests by method)",
        "etcd_mvcc_put_total",
        "etcd_mvcc_range_total",
        "etcd_mvcc_delete_total",
        "etcd_mvcc_txn_total",
        "etcd_debugging_mvcc_put_total",
        "etcd_debugging_mvcc_range_total",
        "etcd_debugging_mvcc_delete_total",
        "etcd_debugging_mvcc_txn_total",
        "etcd_debugging_mvcc_total_put_size_in_bytes",
        "etcd_debugging_mvcc_events_total",
        "etcd_debugging_mvcc_pending_events_total",
        "etcd_debugging_mvcc_watch_stream_total",
        "etcd_debugging_lease_granted_total",
        "etcd_debugging_lease_renewed_total",
        "etcd_debugging_lease_revoked_total",
        "etcd_debugging_lease_ttl_total",
        "etcd_debugging_server_lease_expired_total",
        "etcd_network_client_grpc_received_bytes_total",
        "etcd_network_client_grpc_sent_bytes_total",
        "etcd_server_client_requests_total",
    ),
    **_lacks(
        "timings of work kv does differently or not yet: compaction inside one backend batch "
        "(chapter 2), snapshots as .snap metadata beside the backend, defrag as SQLite's "
        "VACUUM, hashes, slow-apply and ReadIndex failure counts, WAL bytes",
        "etcd_debugging_mvcc_db_compaction_keys_total",
        "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
        "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
        "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
        "etcd_debugging_snap_save_marshalling_duration_seconds",
        "etcd_debugging_snap_save_total_duration_seconds",
        "etcd_snap_db_fsync_duration_seconds",
        "etcd_snap_db_save_total_duration_seconds",
        "etcd_snap_fsync_duration_seconds",
        "etcd_disk_backend_defrag_duration_seconds",
        "etcd_disk_backend_snapshot_duration_seconds",
        "etcd_disk_defrag_inflight",
        "etcd_disk_wal_write_bytes_total",
        "etcd_mvcc_hash_duration_seconds",
        "etcd_mvcc_hash_rev_duration_seconds",
        "etcd_server_heartbeat_send_failures_total",
        "etcd_server_learner_promote_successes",
        "etcd_server_read_indexes_failed_total",
        "etcd_server_slow_apply_total",
        "etcd_server_slow_read_indexes_total",
        "etcd_server_snapshot_apply_in_progress_total",
    ),
}
#: Peer families etcd 3.4.23 has that kv lacks (the 3-member comparison).
LACKS_WITH_PEERS = _lacks(
    "kv's peer transport is one gRPC stream per peer (chapter 4), not etcd's rafthttp "
    "streams and pipelines: no stream failures or snapshot transfer timings of that kind",
    "etcd_network_peer_sent_failures_total",
    "etcd_network_peer_received_failures_total",
    "etcd_network_disconnected_peers_total",
    "etcd_network_snapshot_send_success",
    "etcd_network_snapshot_send_failures",
    "etcd_network_snapshot_send_total_duration_seconds",
    "etcd_network_snapshot_receive_success",
    "etcd_network_snapshot_receive_failures",
    "etcd_network_snapshot_receive_total_duration_seconds",
    "etcd_network_snapshot_send_inflights_total",
    "etcd_network_snapshot_receive_inflights_total",
)


ROUND_TRIP = "etcd_network_peer_round_trip_time_seconds"
ROUND_TRIP_SHAPE = FamilyShape(
    "histogram", "Round-Trip-Time histogram between peers", frozenset({"To"})
)


def _go_only(name: str) -> bool:
    return name.startswith("go_")  # Go's runtime (goroutines, GC, memstats): kv is Python


def scrape(url: str) -> dict[str, FamilyShape]:
    answer = get(url, "/metrics")
    assert answer.status == 200, answer
    assert answer.content_type == TEXT_FORMAT
    return families(answer.body)


@pytest.fixture
def single_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A one-member etcd and kv with metrics URLs, each after one put: their URLs."""
    ports = free_ports(4)
    servers = [
        Server("etcd", tmp_path / "etcd", client_port=ports[0], peer_port=ports[1]),
        Server("kv", tmp_path / "kv", client_port=ports[2], peer_port=ports[3]),
    ]
    urls = [with_metrics_url(server) for server in servers]
    start_all(servers)
    try:
        for server in servers:
            asyncio.run(_put(server.endpoint))
        yield urls[0], urls[1]
    finally:
        for server in servers:
            server.stop()


async def _put(endpoint: str) -> None:
    async with KVClient(endpoint) as client:
        await client.put(b"metrics", b"scraped")


def assert_same_shapes(etcd: dict[str, FamilyShape], kv: dict[str, FamilyShape]) -> None:
    extra = sorted(set(kv) - set(etcd))
    assert not extra, f"kv shows families etcd does not have: {extra}"
    differing = {name: (kv[name], etcd[name]) for name in kv if kv[name] != etcd[name]}
    assert not differing, "kv's (left) differ from etcd's (right):\n" + "\n".join(
        f"{name}: {pair[0]} != {pair[1]}" for name, pair in sorted(differing.items())
    )


def test_every_family_kv_has_is_etcds_with_the_same_type_help_and_labels(
    single_pair: tuple[str, str],
) -> None:
    etcd_url, kv_url = single_pair
    assert_same_shapes(scrape(etcd_url), scrape(kv_url))


def test_the_families_kv_lacks_are_exactly_the_listed_ones(single_pair: tuple[str, str]) -> None:
    etcd_url, kv_url = single_pair
    etcd, kv = scrape(etcd_url), scrape(kv_url)
    missing = {name for name in set(etcd) - set(kv) if not _go_only(name)}
    assert sorted(missing - set(LACKS)) == [], "kv lacks these without saying why"
    assert sorted(set(LACKS) - missing) == [], "listed as lacking, but kv has them (or etcd not)"


def test_the_families_a_dashboard_reads_are_there_on_one_member(
    single_pair: tuple[str, str],
) -> None:
    """The families of etcd's alert rules and its standard Grafana dashboard."""
    kv = scrape(single_pair[1])
    for name in (
        "etcd_server_has_leader",
        "etcd_server_leader_changes_seen_total",
        "etcd_server_proposals_failed_total",
        "etcd_server_proposals_pending",
        "etcd_server_proposals_committed_total",
        "etcd_server_proposals_applied_total",
        "etcd_disk_wal_fsync_duration_seconds",
        "etcd_disk_backend_commit_duration_seconds",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_debugging_mvcc_keys_total",
        "grpc_server_started_total",
        "grpc_server_handled_total",
        "process_resident_memory_bytes",
    ):
        assert name in kv, name


def test_peer_families_match_etcds_in_three_member_clusters(tmp_path: Path) -> None:
    urls: list[str] = []
    with cluster_pair(tmp_path, prepare=first_members_metrics_url(urls)):
        etcd, kv = scrape(urls[0]), scrape(urls[1])
        # etcd shows its first round trip only after its status monitor's 30 s; until then
        # the test compares with the shape etcd 3.4.23 showed after it (HTTP-FACTS.md).
        etcd.setdefault(ROUND_TRIP, ROUND_TRIP_SHAPE)
        assert_same_shapes(etcd, kv)
        kv_peers = {name for name in kv if name.startswith("etcd_network_")}
        for name in ("sent_bytes_total", "received_bytes_total", "round_trip_time_seconds"):
            assert f"etcd_network_peer_{name}" in kv_peers
        unexplained = set(etcd) - set(kv) - set(LACKS) - set(LACKS_WITH_PEERS)
        assert sorted(name for name in unexplained if not _go_only(name)) == []
