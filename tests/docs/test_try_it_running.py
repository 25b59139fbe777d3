"""Chapter 10's commands, every ``sh`` block in order, run as printed against real processes.

One `kv cluster` (started by the chapter's first block, with its flags after ``--``), the real
etcd and etcdctl for the backups, a restored ``kv serve``, a real Prometheus with etcd's alert
rules, and a replacement member started by hand. `PLAN` says, block by block, what the reader
does with it (run it, or leave it running in a terminal of its own) and what it must print; a
block the chapter adds or removes fails the test until the plan says what to expect of it.

Only ports (the chapter's 12379 to 12499, moved to a free range at the same offsets) and
``/tmp/kv-chapter10`` are replaced (`tests.docs.shell.Reader`). The command terminal keeps its
shell variables and functions from one block to the next, as a reader's does. A block that
asks about something that takes time to appear (Prometheus' first scrape, a pending alert, a
member that just restarted) is run again until it prints what the chapter says, as a reader
would run it again; nothing else is retried.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kv.cluster.layout import port_in_use
from tests.compat.servers import REPO_ROOT
from tests.docs.shell import SH_BLOCK, Reader
from tests.prometheus import require_prometheus

pytestmark = pytest.mark.etcd

CHAPTER = REPO_ROOT / "chapters" / "10-running-kv" / "chapter.md"
PROMETHEUS_DIR = "chapters/10-running-kv/prometheus"
#: Every port the chapter names: the cluster's from 12379, the restored etcd's and kv's
#: (12479/12480, 12489/12490) and Prometheus' (12499).
CHAPTER_PORTS = range(12379, 12500)
#: How long a block that waits for something may be run again before the test fails.
RETRY_SECONDS = 40.0
READY = "ready to serve client requests"


class Action(enum.Enum):
    """What the reader does with a block."""

    RUN = "run it in the command terminal, to the end"
    START = "start it in a terminal of its own and leave it running"
    SKIP = "leave it: it is not part of the walk-through"


RUN, START, SKIP = Action.RUN, Action.START, Action.SKIP


@dataclass(frozen=True, slots=True)
class Step:
    """What the reader does with one block, and what it must print."""

    action: Action
    expect: tuple[str, ...] = ()  # each must appear in the output
    fails: bool = False  # the block's last command exits non-zero, as the chapter says
    retry: bool = False  # run again until `expect` appears (see the module docstring)
    terminal: str = ""  # START: the terminal's name
    ready: str = ""  # the terminal's line that says it serves
    stop_first: tuple[str, ...] = ()  # terminals the chapter has stopped (Ctrl-C) before it


PLAN = (
    Step(START, terminal="cluster", ready="members serve"),
    Step(RUN),  # export, mkdir
    Step(RUN, ("Snapshot saved at", "| REVISION | TOTAL KEYS |")),
    Step(RUN),  # etcdctl snapshot restore
    Step(START, terminal="etcd", ready=READY),
    Step(RUN, ("identical", "found 1 leases")),
    Step(RUN, ("Snapshot saved at",)),  # etcd -> kv
    Step(START, terminal="k1", ready=READY, stop_first=("etcd",)),
    Step(RUN, ("written-by\netcd", "config/colour", "greeting", "session/n1")),
    Step(RUN, ("OK", "etcdserver: mvcc: database space exceeded"), stop_first=("k1",)),
    Step(RUN, ("alarm:NOSPACE", '{"health":"false"}')),
    Step(RUN, ("compacted revision", "Finished defragmenting", "OK", '{"health":"true"}')),
    Step(RUN, ('{"health":"true"}', '"etcdcluster":"3.4.0"')),  # the client URL's HTTP
    Step(RUN, ("etcd_server_has_leader 1", "etcd_disk_wal_fsync_duration_seconds_count")),
    Step(START, terminal="prometheus", ready="Server is ready to receive web requests."),
    Step(RUN, ('"value":', '"health":"ok"'), retry=True),
    Step(RUN, ('{"health":"false"}\n503',)),
    Step(RUN, ("is unhealthy",), fails=True),
    Step(RUN, ('"alertname":"etcdNoLeader"',), retry=True),
    Step(RUN, ("is healthy", "granted with TTL(3600s), remaining("), retry=True),
    Step(RUN, ("takes 1200ms longer", "OK", "sync duration of 1.2"), retry=True),
    Step(RUN, ('"result":[{"metric"', '"alertname":"etcdHighFsyncDurations"'), retry=True),
    Step(RUN, ("its disk is healthy again",)),
    Step(RUN, ("stopped n3",)),
    Step(RUN, ("removed from cluster",)),
    Step(RUN, ('ETCD_INITIAL_CLUSTER_STATE="existing"',), retry=True),
    Step(START, terminal="n3", ready=READY),
    Step(RUN, ("started, n3,", "greeting\nhello"), retry=True),
    Step(RUN, stop_first=("n3", "prometheus", "cluster")),  # clean up
    Step(SKIP),  # the Tests section's pytest command: it runs this test
)


def chapter_blocks() -> list[str]:
    return SH_BLOCK.findall(CHAPTER.read_text())


def free_chapter_base() -> int:
    """A base port from which every port the chapter uses, moved along, is free."""
    for base in range(21000, 60000 - len(CHAPTER_PORTS), 997):
        if not any(port_in_use(base + port - CHAPTER_PORTS[0]) for port in CHAPTER_PORTS):
            return base
    raise RuntimeError("no free range of ports for chapter 10")


class Terminal(Reader):
    """The reader's command terminal: a block's variables and functions stay for the next."""

    def __init__(self, cwd: Path, replacements: dict[str, str]) -> None:
        super().__init__(cwd, replacements)
        self.saved = cwd / "terminal.env"
        self.saved.touch()

    def run_block(self, block: str) -> tuple[int, str]:
        return self.run(
            # set -a exports every variable a block sets, so that export -p saves it.
            f"source {self.saved}\nset -ea\n{block}\n{{ export -p; declare -f; }} > {self.saved}\n"
        )


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    require_prometheus()
    base = free_chapter_base()
    ports = {f":{port}": f":{base + port - CHAPTER_PORTS[0]}" for port in CHAPTER_PORTS}
    config = tmp_path / "prometheus-config"
    config.mkdir()
    replacements = {
        **ports,
        "cluster start --fresh": f"cluster start --fresh --base-port {base}",
        "/tmp/kv-chapter10": str(tmp_path / "kv-chapter10"),
        PROMETHEUS_DIR: str(config),
    }
    reader = Terminal(tmp_path, replacements)
    for name in ("prometheus.yml", "alerts.yml"):  # the configuration, with the ports moved
        (config / name).write_text(reader.adapt((REPO_ROOT / PROMETHEUS_DIR / name).read_text()))
    yield reader
    reader.stop_all()
    reader.run("python3 -m kv cluster stop")  # members left if the foreground died


def run_step(terminal: Terminal, number: int, block: str, step: Step) -> str:
    deadline = time.monotonic() + (RETRY_SECONDS if step.retry else 0)
    while True:
        code, output = terminal.run_block(block)
        printed = (code != 0) == step.fails and all(text in output for text in step.expect)
        if printed or time.monotonic() > deadline:
            break
        time.sleep(1.0)  # a reader's pause before running it again
    where = f"block {number}:\n{terminal.adapt(block)}\nexit status {code}, output:\n{output}"
    assert (code != 0) == step.fails, where
    for text in step.expect:
        assert text in output, f"{text!r} missing from {where}"
    return output


def assert_lease_kept_its_time(output: str, led_seconds: float) -> None:
    """After the election, the lease's remaining TTL counts from the last checkpoint before
    the leader was lost (at most one 5 s interval and a second of rounding before it), not
    from a fresh 3600 s. ``led_seconds``: from the grant to the kill, while it had a leader."""
    remaining = int(re.findall(r"remaining\((\d+)s\)", output)[-1])
    assert remaining <= 3600 - led_seconds + 5 + 1, (remaining, led_seconds)


def test_every_block_has_a_step() -> None:
    assert len(chapter_blocks()) == len(PLAN)


def test_no_block_names_etcds_default_ports() -> None:
    """A reader's own kv serve (the Quickstart's) or etcd may hold 2379 and 2380."""
    named = [
        line
        for b in chapter_blocks()
        for line in b.splitlines()
        if re.search(r":23(79|80)\b", line)
    ]
    assert not named, named


def test_the_command_terminal_names_the_clusters_endpoints_before_any_etcdctl() -> None:
    """Every etcdctl command runs after the block that exports ETCDCTL_ENDPOINTS (or names its
    endpoint itself): none asks etcdctl's default, 127.0.0.1:2379."""
    blocks = chapter_blocks()
    first = next(
        i for i, block in enumerate(blocks) if "export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=" in block
    )
    earlier = [block for block in blocks[:first] if re.search(r"\betcdctl\b", block)]
    assert not earlier, earlier


def test_chapter_ten_runs_as_printed(terminal: Terminal) -> None:
    granted = killed = time.monotonic()
    for number, (block, step) in enumerate(zip(chapter_blocks(), PLAN, strict=True)):
        for name in step.stop_first:
            terminal.stop(name)
        if "lease grant" in block:
            granted = time.monotonic()  # a moment before the grant: the bound is looser
        if "cluster kill" in block:
            killed = time.monotonic()  # before the kill: the bound is looser
        if step.action is START:
            terminal.start(step.terminal, block)
            terminal.wait_for_line(step.terminal, step.ready)
        elif step.action is RUN:
            output = run_step(terminal, number, block, step)
            if "lease timetolive" in block:
                assert_lease_kept_its_time(output, killed - granted)
    assert re.search(r"stopped n1 n2", terminal.output("cluster")), terminal.output("cluster")
