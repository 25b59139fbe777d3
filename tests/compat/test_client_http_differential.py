"""HTTP on the client URL beside the real etcd 3.4 (chapter 10): etcd 3.4 answers
``/health``, ``/version`` and ``/metrics`` on the very port its gRPC clients use, and so does
kv, through the front that tells HTTP/1.1 from gRPC (`kv.server.front`).

Compared: status, content type, body and headers (the CORS headers etcd's client URLs add),
byte for byte, but for ``/version``'s server version (etcd says 3.4.23, kv the API version it
implements, 3.4.0). etcd 3.4 has no ``--listen-client-http-urls`` (3.5.8 added it to take HTTP
off the client URLs); kv's, tested on kv alone, moves HTTP to URLs of its own.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kv.client import KVClient
from tests.compat.http_endpoints import families, get, get_with_headers
from tests.compat.servers import Server, ServerOptions, free_ports, start_all

pytestmark = pytest.mark.etcd

CORS = {
    "access-control-allow-headers": "accept, content-type, authorization",
    "access-control-allow-methods": "POST, GET, OPTIONS, PUT, DELETE",
    "access-control-allow-origin": "*",
}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[str]]:
    """A one-member etcd and kv: their client URLs, etcd's first."""
    ports = free_ports(4)
    servers = [
        Server("etcd", tmp_path / "etcd", client_port=ports[0], peer_port=ports[1]),
        Server("kv", tmp_path / "kv", client_port=ports[2], peer_port=ports[3]),
    ]
    start_all(servers)
    try:
        yield [f"http://{server.endpoint}" for server in servers]
    finally:
        for server in servers:
            server.stop()


def test_the_client_url_answers_health_with_etcds_headers(pair: list[str]) -> None:
    etcd, kv = (get_with_headers(url, "/health") for url in pair)
    assert kv == etcd
    assert CORS.items() <= kv[1].items()


def test_the_client_url_answers_version(pair: list[str]) -> None:
    etcd, kv = (get_with_headers(url, "/version") for url in pair)
    assert (kv[0].status, kv[0].content_type, kv[1]) == (
        etcd[0].status,
        etcd[0].content_type,
        {**etcd[1], "content-length": kv[1]["content-length"]},
    )
    etcd_version, kv_version = json.loads(etcd[0].body), json.loads(kv[0].body)
    assert etcd_version["etcdcluster"] == kv_version["etcdcluster"] == "3.4.0"
    assert kv_version["etcdserver"] == "3.4.0"


def test_the_client_url_serves_the_metrics(pair: list[str]) -> None:
    etcd, kv = (get(url, "/metrics") for url in pair)
    assert kv.content_type == etcd.content_type
    assert {"etcd_server_has_leader", "grpc_server_handled_total"} <= families(kv.body).keys()


def test_paths_3_4_lacks_are_not_found_on_the_client_url(pair: list[str]) -> None:
    for path in ("/livez", "/readyz"):
        assert get(pair[1], path) == get(pair[0], path), path


def test_grpc_and_http_share_the_client_url(pair: list[str]) -> None:
    async def put_and_get(endpoint: str) -> bytes:
        async with KVClient(endpoint) as client:
            await client.put("shared", "port")
            kv = await client.get("shared")
            assert kv is not None
            return kv.value

    for url in pair:
        assert asyncio.run(put_and_get(url.removeprefix("http://"))) == b"port"
        assert get(url, "/health").status == 200


def test_listen_client_http_urls_moves_http_off_the_client_urls(tmp_path: Path) -> None:
    client, peer, http_port = free_ports(3)
    http_url = f"http://127.0.0.1:{http_port}"
    server = Server(
        "kv",
        tmp_path / "kv",
        ServerOptions(extra_flags=(f"--listen-client-http-urls={http_url}",)),
        client_port=client,
        peer_port=peer,
    )
    start_all([server])  # readiness is a gRPC Range on the client URL
    try:
        health, headers = get_with_headers(http_url, "/health")
        assert (health.status, CORS.items() <= headers.items()) == (200, True)
        # gRPC alone: an HTTP/1.1 request gets HTTP/2 frames back, or a closed connection.
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            get(f"http://{server.endpoint}", "/health", timeout=5.0)
    finally:
        server.stop()
