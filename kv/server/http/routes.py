"""What a member answers over HTTP: ``/metrics``, ``/health`` and ``/version`` (chapter 10).

etcd serves these beside gRPC on its client URLs, and ``/metrics`` and ``/health`` (not
``/version``) on each ``--listen-metrics-urls`` URL. `Routes` answers one request with the
status, headers and body etcd 3.4.23 sends, checked against the real etcd by
``tests/compat/test_http_differential.py``:

* ``/metrics``: Prometheus' text format 0.0.4 (``text/plain; version=0.0.4; charset=utf-8``,
  what etcd's promhttp sends), every family with its ``# HELP`` and ``# TYPE`` lines;
* ``/health``: `kv.server.http.health`;
* ``/version``: ``{"etcdserver":"3.4.0","etcdcluster":"3.4.0"}`` (``not_decided`` until the
  cluster version is), ``application/json``;
* anything else: Go's ``404 page not found``.

On the client URLs etcd's CORS wrapper adds three ``Access-Control-Allow-*`` headers to
every answer; the metrics URLs have no such wrapper.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry

from kv.server.http.health import check_health
from kv.server.metrics.collector import SERVER_VERSION, HealthCounts
from kv.server.metrics.exposition import CONTENT_TYPE, exposition
from kv.server.requests.server import Server

TEXT = "text/plain; charset=utf-8"
#: etcd's CORS handler on the client URLs (``etcdserver/api/v2http/client.go``-era wrapper).
CORS_HEADERS = (
    ("Access-Control-Allow-Headers", "accept, content-type, authorization"),
    ("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
    ("Access-Control-Allow-Origin", "*"),
)
#: Go's ``http.Error`` adds this to every error it writes.
_NOSNIFF = ("X-Content-Type-Options", "nosniff")


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer: status, headers (in order; ``Content-Length`` is added when sent)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


def go_error(status: int, text: str, *headers: tuple[str, str]) -> Response:
    """What Go's ``http.Error`` writes: the text and a newline, as plain text, nosniff."""
    return Response(status, (text + "\n").encode(), (*headers, ("Content-Type", TEXT), _NOSNIFF))


NOT_FOUND = go_error(404, "404 page not found")
METHOD_NOT_ALLOWED = go_error(405, "Method Not Allowed", ("Allow", "GET"))


class Routes:
    """A member's HTTP endpoints; ``client`` for the client URLs (``/version``, CORS)."""

    def __init__(
        self,
        server: Server,
        registry: CollectorRegistry,
        health: HealthCounts,
        *,
        client: bool,
    ) -> None:
        self.server = server
        self.registry = registry
        self.health = health
        self.client = client

    async def answer(self, method: str, target: str) -> Response:
        """The answer to ``method`` on ``target`` (the request line's path and query)."""
        path, _, query = target.partition("?")
        response = await self._route(method, path, parse_qs(query))
        if self.client:
            return Response(response.status, response.body, CORS_HEADERS + response.headers)
        return response

    async def _route(self, method: str, path: str, query: dict[str, list[str]]) -> Response:
        if path == "/metrics":
            body = exposition(self.registry)
            return Response(200, body, (("Content-Type", CONTENT_TYPE),))
        if path == "/health":
            if method != "GET":
                return METHOD_NOT_ALLOWED
            healthy = await check_health(self.server, self.health, query.get("exclude", []))
            answer = json.dumps({"health": str(healthy).lower()}, separators=(",", ":"))
            if not healthy:
                return go_error(503, answer)
            return Response(200, answer.encode(), (("Content-Type", TEXT),))
        if path == "/version" and self.client:
            if method != "GET":
                return METHOD_NOT_ALLOWED
            return Response(200, self._version(), (("Content-Type", "application/json"),))
        return NOT_FOUND

    def _version(self) -> bytes:
        """etcd's ``/version``: the server's version and the cluster's (``not_decided``
        before the members agreed on one, etcd: ``etcdhttp/base.go``)."""
        cluster = self.server.replica.members.cluster_version or "not_decided"
        return json.dumps(
            {"etcdserver": SERVER_VERSION, "etcdcluster": cluster}, separators=(",", ":")
        ).encode()
