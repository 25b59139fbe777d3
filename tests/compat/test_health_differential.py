"""``/health`` (and the other HTTP answers) beside the real etcd 3.4: status code, content
type and body, byte for byte, on the ``--listen-metrics-urls`` URL.

etcd 3.4.23 answers ``{"health":"true"}`` with 200, and ``{"health":"false"}`` plus a newline
with 503 when an alarm is raised (unless ``?exclude=`` names it), when no leader is known,
or when a quorum read fails within a second (`kv.server.http.health`). The no-leader case
runs a 3-member cluster of each with two members stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.client import KVClient
from tests.compat.clusters import cluster_pair
from tests.compat.http_endpoints import Answer, first_members_metrics_url, get, with_metrics_url
from tests.compat.servers import Server, free_ports, start_all

pytestmark = pytest.mark.etcd

HEALTHY = Answer(200, "text/plain; charset=utf-8", '{"health":"true"}')
UNHEALTHY = Answer(503, "text/plain; charset=utf-8", '{"health":"false"}\n')
NOT_FOUND = Answer(404, "text/plain; charset=utf-8", "404 page not found\n")
NOT_ALLOWED = Answer(405, "text/plain; charset=utf-8", "Method Not Allowed\n")
#: How long the no-leader test waits for each side to notice (etcd's check-quorum step-down
#: or a failing quorum read take about an election timeout).
DEADLINE = 20.0


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[tuple[Server, str]]]:
    """A one-member etcd and kv with metrics URLs: (server, metrics URL), etcd first."""
    ports = free_ports(4)
    servers = [
        Server("etcd", tmp_path / "etcd", client_port=ports[0], peer_port=ports[1]),
        Server("kv", tmp_path / "kv", client_port=ports[2], peer_port=ports[3]),
    ]
    urls = [with_metrics_url(server) for server in servers]
    start_all(servers)
    try:
        yield list(zip(servers, urls, strict=True))
    finally:
        for server in servers:
            server.stop()


def both(pair: list[tuple[Server, str]], path: str, method: str = "GET") -> list[Answer]:
    return [get(url, path, method) for _, url in pair]


def test_health_with_a_leader_is_true(pair: list[tuple[Server, str]]) -> None:
    assert both(pair, "/health") == [HEALTHY, HEALTHY]


def test_health_refuses_methods_but_get(pair: list[tuple[Server, str]]) -> None:
    assert both(pair, "/health", "POST") == [NOT_ALLOWED, NOT_ALLOWED]


def test_other_paths_of_the_metrics_url_are_not_found(pair: list[tuple[Server, str]]) -> None:
    """The metrics URL serves /metrics and /health only: not /version, /livez, /readyz
    (etcd 3.4 has neither of the last two anywhere)."""
    for path in ("/version", "/livez", "/readyz", "/"):
        assert both(pair, path) == [NOT_FOUND, NOT_FOUND], path


def test_health_under_a_nospace_alarm_is_false_unless_excluded(
    pair: list[tuple[Server, str]],
) -> None:
    for server, _ in pair:
        asyncio.run(_raise_nospace(server.endpoint))
    assert both(pair, "/health") == [UNHEALTHY, UNHEALTHY]
    assert both(pair, "/health?exclude=NOSPACE") == [HEALTHY, HEALTHY]
    assert both(pair, "/health?exclude=CORRUPT") == [UNHEALTHY, UNHEALTHY]


async def _raise_nospace(endpoint: str) -> None:
    async with KVClient(endpoint) as client:
        status = await client.status()
        await client.alarm(
            rpc_pb2.AlarmRequest.ACTIVATE,
            member_id=status.header.member_id,
            alarm=rpc_pb2.AlarmType.NOSPACE,
        )


def test_health_without_a_leader_is_false(tmp_path: Path) -> None:
    urls: list[str] = []
    with cluster_pair(tmp_path, prepare=first_members_metrics_url(urls)) as both:
        assert [get(url, "/health") for url in urls] == [HEALTHY, HEALTHY]
        for cluster in both:
            for member in cluster.members[1:]:
                cluster.kill(member)
        assert [_until_unhealthy(url) for url in urls] == [UNHEALTHY, UNHEALTHY]


def _until_unhealthy(url: str) -> Answer:
    """Ask until the member says it is not healthy (it takes a moment to notice)."""
    deadline = time.monotonic() + DEADLINE
    answer = get(url, "/health")
    while answer.status == 200 and time.monotonic() < deadline:
        time.sleep(0.1)  # polling interval only: the answer decides
        answer = get(url, "/health")
    return answer
