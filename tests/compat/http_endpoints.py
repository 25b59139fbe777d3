"""Helpers for the HTTP differential tests: give a `Server` a metrics URL, GET from it, and
read the families of a ``/metrics`` page.

A family is read from its ``# HELP`` and ``# TYPE`` lines and the label names of its samples
(a histogram's ``le`` left out, since Prometheus adds it to every bucket).
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tests.compat.servers import Server, free_ports

if TYPE_CHECKING:
    from tests.cluster.processes import ProcessCluster

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? \S+$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"')


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, with the headers a differential test compares."""

    status: int
    content_type: str
    body: str


@dataclass(frozen=True, slots=True)
class FamilyShape:
    """What a dashboard depends on: the type, the help text, the label names."""

    kind: str
    help: str
    labels: frozenset[str]


def with_metrics_url(server: Server) -> str:
    """Give ``server`` a ``--listen-metrics-urls`` URL on a free port; return it."""
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    extra = (*server.options.extra_flags, f"--listen-metrics-urls={url}")
    server.options = replace(server.options, extra_flags=extra)
    return url


def first_members_metrics_url(urls: list[str]) -> Callable[[ProcessCluster], None]:
    """A ``prepare`` for `tests.compat.clusters.cluster_pair`: give each cluster's first member
    a metrics URL, appended to ``urls`` (the reference's first)."""
    return lambda cluster: urls.append(with_metrics_url(cluster.members[0]))


def get(url: str, path: str, method: str = "GET", timeout: float = 10.0) -> Answer:
    """``method`` ``path`` on ``url`` (``http://host:port``), over a fresh connection."""
    return get_with_headers(url, path, method, timeout)[0]


def get_with_headers(
    url: str, path: str, method: str = "GET", timeout: float = 10.0
) -> tuple[Answer, dict[str, str]]:
    """`get`, with every header of the answer but ``Date`` (by name, lower case)."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read().decode()
        headers = {name.lower(): value for name, value in response.getheaders()}
        headers.pop("date", None)
        return Answer(response.status, response.getheader("Content-Type") or "", body), headers
    finally:
        connection.close()


def families(page: str) -> dict[str, FamilyShape]:
    """The families of a ``/metrics`` page, by name."""
    helps: dict[str, str] = {}
    kinds: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for line in page.splitlines():
        if line.startswith("# HELP "):
            name, _, text = line.removeprefix("# HELP ").partition(" ")
            helps[name] = text
        elif line.startswith("# TYPE "):
            name, _, kind = line.removeprefix("# TYPE ").partition(" ")
            kinds[name] = kind
            labels.setdefault(name, set())
        elif line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            family = _family_of(match.group(1), kinds)
            names = set(_LABEL.findall(match.group(2) or "")) - {"le"}
            labels.setdefault(family, set()).update(names)
    return {
        name: FamilyShape(kind, helps.get(name, ""), frozenset(labels[name]))
        for name, kind in kinds.items()
    }


def _family_of(sample: str, kinds: dict[str, str]) -> str:
    if sample in kinds:
        return sample
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample.removesuffix(suffix)
        if base != sample and kinds.get(base) in ("histogram", "summary"):
            return base
    raise AssertionError(f"sample {sample} belongs to no family declared before it")
