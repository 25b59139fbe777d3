"""Fixtures for the differential suite: a fresh real etcd beside a fresh subject per test.

Environment:
    KV_COMPAT_SUBJECT: ``kv`` (default) compares kv with the real etcd; ``etcd`` compares two
        real etcd servers, which checks the harness itself: the normaliser must make them equal
        and must not hide anything else.
    KV_REQUIRE_ETCD: ``1`` turns "etcd is not installed" from a skip into a failure (CI;
        ``tests/conftest.py`` applies it to every test marked ``etcd``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.cluster.processes import ProcessCluster
from tests.compat.scenario import ServerPair, StartPair
from tests.compat.servers import (
    Server,
    ServerKind,
    ServerOptions,
    free_ports,
    start_all,
)

SUBJECT_ENV = "KV_COMPAT_SUBJECT"

_SERVERS = pytest.StashKey[list[Server]]()


def subject_kind() -> ServerKind:
    value = os.environ.get(SUBJECT_ENV, "kv")
    if value == "kv":
        return "kv"
    if value == "etcd":
        return "etcd"
    raise pytest.UsageError(f"{SUBJECT_ENV} must be 'kv' or 'etcd', not {value!r}")


def pytest_report_header() -> str:
    return f"compat: reference etcd vs subject {os.environ.get(SUBJECT_ENV, 'kv')}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the servers' logs to the report of a failed test."""
    report = yield
    if report.when == "call" and report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"server log {server.label}", server.log_tail()))
    return report


@pytest.fixture
def start_pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartPair]:
    """A function that boots a fresh reference etcd and a fresh subject with the same flags.

    Each call gets new ports and data dirs, so revisions start at 1. Servers are stopped (and
    their data dirs, which hold etcd's 64 MB preallocated WAL, removed) after the test.
    """
    started: list[Server] = []
    request.node.stash[_SERVERS] = started

    def start(options: ServerOptions | None = None) -> ServerPair:
        opts = options or ServerOptions()
        n = len(started) // 2
        ports = free_ports(4)  # all four at once, so the two servers cannot pick the same port
        pair = ServerPair(
            reference=Server("etcd", tmp_path / f"reference-{n}", opts, ports[0], ports[1]),
            subject=Server(subject_kind(), tmp_path / f"subject-{n}", opts, ports[2], ports[3]),
        )
        started.extend([pair.reference, pair.subject])
        start_all([pair.reference, pair.subject])
        return pair

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture
def pair(start_pair: StartPair) -> ServerPair:
    """A fresh reference etcd and subject with default flags."""
    return start_pair()


@contextlib.contextmanager
def cluster_pair(workdir: Path, size: int = 3) -> Iterator[tuple[ProcessCluster, ProcessCluster]]:
    """A real etcd cluster and a subject cluster of ``size`` members each, started; stopped
    afterwards. Both clusters' ports are chosen at once, so that none is given twice."""
    ports = free_ports(4 * size)
    reference = ProcessCluster.create("etcd", workdir / "etcd", size, ports=ports[: 2 * size])
    subject = ProcessCluster.create(
        subject_kind(), workdir / "subject", size, ports=ports[2 * size :]
    )
    try:
        reference.start()
        subject.start()
        yield reference, subject
    finally:
        reference.stop()
        subject.stop()
