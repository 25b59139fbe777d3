"""Fixtures of the ``kv cluster`` tests: free ports, a running cluster, logs of failures.

* `base_port` -- a base port whose whole layout (client and peer port of every member) was
  free a moment ago. It is drawn below the system's ephemeral range (where connect() and
  port-0 binds pick ports, so other tests cannot take ours) and never near etcd's 2379/2380.
* `cluster` -- a 3-member cluster started in this process through the Python API, stopped at
  the end of the test, which also checks that no member process is left.
* `make_cluster` -- makes and starts 3-member `ProcessCluster`s of ``kv serve`` with extra
  flags, each in a directory of its own; all are stopped at the end of the test.
* Tests marked ``etcd`` need the real ``etcd`` and ``etcdctl`` (``tests/conftest.py``).
* A failed test's report ends with the last lines of every member's log (and, for a
  `make_cluster` cluster, whether each member's process was still running).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from kv.cluster import control, processes, supervisor
from kv.cluster.layout import METRICS_OFFSET, PORT_STRIDE, Layout, port_in_use
from kv.cluster.state import load
from tests.cluster.processes import ProcessCluster
from tests.compat.servers import Server

#: Base ports are drawn from here: above the well-known ports and etcd's 2379/2380, below
#: Linux's default ephemeral range (32768-60999).
PORT_RANGE = (20000, 32000)
#: Faster than etcd's defaults (100 ms, 1000 ms) so that elections take well under a second;
#: still ten heartbeats per election timeout, as etcd recommends.
HEARTBEAT_MS = 50
ELECTION_MS = 500
LOG_LINES_IN_REPORT = 25

_LAYOUTS = pytest.StashKey[list[Layout]]()
_CLUSTERS = pytest.StashKey[list[ProcessCluster]]()


def free_base_port(size: int, rng: random.Random | None = None) -> int:
    """A base port for ``size`` members whose every port was free a moment ago."""
    rng = rng or random.Random()
    for _ in range(200):
        base = rng.randrange(*PORT_RANGE)
        ports = [
            base + PORT_STRIDE * i + offset
            for i in range(size)
            for offset in range(METRICS_OFFSET + 1)
        ]
        if not any(port_in_use(port) for port in ports):
            return base
    raise RuntimeError(f"no free base port for {size} members in {PORT_RANGE}")


@pytest.fixture
def base_port() -> int:
    return free_base_port(3)


def remember(request: pytest.FixtureRequest, layout: Layout) -> None:
    """Attach ``layout``'s member logs to the report if the test fails."""
    request.node.stash.setdefault(_LAYOUTS, []).append(layout)


def leftover_members(root: Path) -> list[str]:
    """The members of the cluster in ``root`` whose last process still runs."""
    state = load(root)
    if state is None:
        return []
    return [
        f"{member.name} pid {state.pids[member.name]}" for member in control.running_members(state)
    ]


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path, base_port: int) -> Iterator[Layout]:
    """A running 3-member cluster (fast timing), started and stopped through the Python API."""
    layout = Layout(
        tmp_path / "cluster",
        size=3,
        base_port=base_port,
        heartbeat_interval=HEARTBEAT_MS,
        election_timeout=ELECTION_MS,
    )
    remember(request, layout)
    supervisor.start(layout)
    yield layout
    state = load(layout.root)
    if state is not None:
        control.stop_members(state, hurry=lambda: True)
    processes.reap()
    assert leftover_members(layout.root) == []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        for layout in item.stash.get(_LAYOUTS, []):
            for member in layout.members:
                try:
                    lines = member.log_file.read_text(errors="replace").splitlines()
                except FileNotFoundError:
                    continue
                tail = "\n".join(lines[-LOG_LINES_IN_REPORT:])
                report.sections.append((f"log of {member.name} ({member.log_file})", tail))
        for cluster in item.stash.get(_CLUSTERS, []):
            for server in cluster.members:
                report.sections.append(
                    (
                        f"{server.name}: {_process_state(server)}",
                        server.log_tail(LOG_LINES_IN_REPORT),
                    )
                )
    return report


def _process_state(server: Server) -> str:
    """Whether ``server``'s process still ran when the test failed: a member whose port
    refuses connections may have exited, or may be alive with its listener gone."""
    process = server.process
    if process is None:
        return "never launched"
    code = process.poll()
    return f"pid {process.pid} running" if code is None else f"pid {process.pid} exited with {code}"


@pytest.fixture
def make_cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., ProcessCluster]]:
    started = request.node.stash.setdefault(_CLUSTERS, [])

    def make(*extra_flags: str) -> ProcessCluster:
        workdir = tmp_path / f"cluster-{len(started)}"
        cluster = ProcessCluster.create("kv", workdir, 3, extra_flags)
        started.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in started:
        cluster.stop()
