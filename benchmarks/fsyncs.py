"""Counting a server's fsyncs from outside, with strace (chapter 2).

Group commit's promise is fewer fsyncs than writes under load. kv counts its own
(`benchmarks.kv_counters` counts `kv.wal.WAL.sync` calls), but only inside the server, and
etcd has no counter that kv shares.
So the benchmark counts the same way for both: it runs the server under strace, tracing only
the calls that flush a file to the disk::

    strace -f --seccomp-bpf -qq -e signal=none -y -ttt -T \\
        -e trace=fsync,fdatasync,sync_file_range,syncfs -o FILE -- <server command>

``--seccomp-bpf`` has the kernel stop the server only at those calls, so every other system
call (the network's, the reads and writes) runs at full speed; ``-f`` follows every thread;
``-y`` names the file behind each descriptor; ``-ttt`` and ``-T`` give each call's wall-clock
start and its duration. `calls` reads the output back, `count` keeps the calls made during a
measured window and sorts them by file: the write-ahead log's segments (``*.wal``), the
backend (``member/snap/db`` and SQLite's ``db-wal``/``db-shm`` beside it), and anything else
(directories, snapshot files).

strace is Debian's ``strace`` package (``apt-get install strace``). Where it is missing, or
ptrace is not allowed (some containers), `unavailable` says why and the benchmark goes on
without this measurement.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks import kv_counters
from benchmarks.servers import Server

STRACE = "strace"
#: The system calls that make written data durable.
SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs")
FileKind = Literal["wal", "backend", "other"]
FILE_KINDS: tuple[FileKind, ...] = ("wal", "backend", "other")

# "1234  1795509860.070941 fdatasync(3</tmp/x/0000.wal>) = 0 <0.000365>", or the same call in
# two lines when another thread's call came in between: "... fdatasync(3</p> <unfinished ...>"
# then "1234  1795509860.071002 <... fdatasync resumed>) = 0 <0.000365>".
_WHOLE = re.compile(
    r"^(?P<pid>\d+)\s+(?P<time>\d+\.\d+) (?P<call>\w+)\(\d+<(?P<path>[^>]*)>.*\) = "
    r"(?P<result>-?\d+).*<(?P<seconds>\d+\.\d+)>$"
)
_UNFINISHED = re.compile(
    r"^(?P<pid>\d+)\s+(?P<time>\d+\.\d+) (?P<call>\w+)\(\d+<(?P<path>[^>]*)>.*<unfinished \.\.\.>$"
)
_RESUMED = re.compile(
    r"^(?P<pid>\d+)\s+\d+\.\d+ <\.\.\. (?P<call>\w+) resumed>.*= (?P<result>-?\d+).*"
    r"<(?P<seconds>\d+\.\d+)>$"
)


def prefix(output: Path) -> list[str]:
    """The command that runs a server under strace, writing the sync calls to ``output``."""
    return [
        STRACE,
        "-f",
        "--seccomp-bpf",
        "-qq",
        "-e",
        "signal=none",
        "-y",
        "-ttt",
        "-T",
        "-e",
        "trace=" + ",".join(SYNC_CALLS),
        "-o",
        str(output),
        "--",
    ]


def unavailable() -> str | None:
    """Why strace cannot count here (not installed, ptrace refused), or None if it can."""
    if shutil.which(STRACE) is None:
        return "strace is not installed (apt-get install strace)"
    try:
        subprocess.run(
            [*prefix(Path("/dev/null")), "true"], capture_output=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        return f"strace cannot trace here: {detail.decode(errors='replace').strip() or error}"
    return None


@dataclass(frozen=True, slots=True)
class SyncCall:
    """One successful sync call."""

    started: float
    """Wall-clock time (``time.time()``) the call began."""
    call: str
    path: str
    seconds: float
    """How long the call took."""

    @property
    def kind(self) -> FileKind:
        """Which of the server's files it made durable."""
        name = self.path.rsplit("/", 1)[-1]
        if name.endswith(".wal"):
            return "wal"
        if name in ("db", "db-wal", "db-shm", "db-journal"):
            return "backend"
        return "other"


def calls(lines: Iterable[str]) -> list[SyncCall]:
    """The successful sync calls in strace's output, in the order they began."""
    found = []
    pending: dict[str, tuple[float, str, str]] = {}  # thread id -> (start, call, path)
    for line in lines:
        line = line.rstrip("\n")
        if whole := _WHOLE.match(line):
            if whole["result"] == "0":
                found.append(
                    SyncCall(
                        float(whole["time"]), whole["call"], whole["path"], float(whole["seconds"])
                    )
                )
        elif unfinished := _UNFINISHED.match(line):
            pending[unfinished["pid"]] = (
                float(unfinished["time"]),
                unfinished["call"],
                unfinished["path"],
            )
        elif (resumed := _RESUMED.match(line)) and resumed["pid"] in pending:
            started, call, path = pending.pop(resumed["pid"])
            if resumed["result"] == "0":
                found.append(SyncCall(started, call, path, float(resumed["seconds"])))
    found.sort(key=lambda c: c.started)
    return found


@dataclass(frozen=True, slots=True)
class FsyncCount:
    """The sync calls a server made while a measured window was open, against its writes."""

    server: str
    writes: int
    """Writes acknowledged in the window."""
    requests_per_second: float
    """The put rate while traced (compare it with the untraced run's)."""
    p50_ms: float
    p99_ms: float
    calls: dict[str, int]
    """Sync calls by file kind (`FILE_KINDS`)."""
    mean_ms: dict[str, float]
    """Their mean duration by file kind, milliseconds."""
    by_call: dict[str, int]
    """Sync calls by system call name (fsync, fdatasync, ...)."""

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def per_write(self, kind: FileKind | None = None) -> float:
        """Sync calls per acknowledged write: of one file kind, or all of them."""
        count = self.total if kind is None else self.calls.get(kind, 0)
        return count / self.writes if self.writes else float("nan")

    @property
    def writes_per_wal_sync(self) -> float:
        """How many writes one log fsync acknowledged, on average (the batch size)."""
        wal = self.calls.get("wal", 0)
        return self.writes / wal if wal else float("nan")


def count(
    server: str,
    traced: Sequence[SyncCall],
    window: tuple[float, float],
    writes: int,
    requests_per_second: float,
    latency_ms: tuple[float, float],
) -> FsyncCount:
    """Count the ``traced`` calls that began inside ``window`` (wall-clock start, end)."""
    opened, closed = window
    inside = [c for c in traced if opened <= c.started < closed]
    numbers: Counter[str] = Counter(c.kind for c in inside)
    durations: defaultdict[str, float] = defaultdict(float)
    for c in inside:
        durations[c.kind] += c.seconds
    return FsyncCount(
        server=server,
        writes=writes,
        requests_per_second=requests_per_second,
        p50_ms=latency_ms[0],
        p99_ms=latency_ms[1],
        calls={kind: numbers[kind] for kind in FILE_KINDS},
        mean_ms={
            kind: durations[kind] * 1e3 / numbers[kind] for kind in FILE_KINDS if numbers[kind]
        },
        by_call=dict(Counter(c.call for c in inside)),
    )


@dataclass(frozen=True, slots=True)
class DiskProbe:
    """How long the disk under a directory takes to make a small append durable."""

    p50_ms: float
    p99_ms: float
    samples: int


def probe_disk(directory: Path, samples: int = 200, size: int = 4096) -> DiskProbe:
    """Append ``size`` bytes and fdatasync, ``samples`` times, in a scratch file in
    ``directory``: the floor under any durable write there (a WAL append is this)."""
    durations = []
    fd, name = tempfile.mkstemp(prefix="bench-fsync-probe-", dir=directory)
    try:
        block = os.urandom(size)
        for _ in range(samples):
            os.write(fd, block)
            started = time.perf_counter()
            os.fdatasync(fd)
            durations.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(name)
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    return DiskProbe(p50_ms=cuts[49] * 1e3, p99_ms=cuts[98] * 1e3, samples=samples)


# --- the servers' own counters -------------------------------------------------------------

#: ``kv serve`` through `benchmarks.kv_counters`: its fsyncs and Raft loop stages on SIGUSR1.
KV_COUNTERS_COMMAND = (
    sys.executable,
    "-c",
    "from benchmarks.kv_counters import main; raise SystemExit(main())",
    "serve",
)
#: etcd's count of write-ahead log fsyncs (one per ``wal.Sync``), on its ``/metrics`` page.
ETCD_WAL_FSYNCS = "etcd_disk_wal_fsync_duration_seconds_count"


def read_own_counter(server: Server) -> int:
    """How many write-ahead log fsyncs the server has made so far, by its own count.

    kv must run as `KV_COUNTERS_COMMAND`: it is sent SIGUSR1 and its log read for the line it
    prints. etcd is asked for its Prometheus metrics over HTTP on its client URL.
    """
    if server.kind == "etcd":
        return int(etcd_metrics(server.endpoint, (ETCD_WAL_FSYNCS,))[ETCD_WAL_FSYNCS])
    return int(kv_counters.read(server.log_path, server.pid)["fsyncs"])


def etcd_metrics(endpoint: str, names: Sequence[str]) -> dict[str, float]:
    """The values of the unlabelled metrics ``names`` on the ``/metrics`` page of the etcd
    member whose client URL is at ``endpoint``; raise `LookupError` if one is missing."""
    found: dict[str, float] = {}
    with urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=5.0) as page:
        for line in page.read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name in names:
                found[name] = float(value)
    missing = [name for name in names if name not in found]
    if missing:
        raise LookupError(f"etcd's /metrics has no {', '.join(missing)}")
    return found


@dataclass(frozen=True, slots=True)
class OwnCount:
    """Log fsyncs by the server's own counter over a measured (untraced) window."""

    server: str
    writes: int
    """Writes acknowledged in the window (the load's count)."""
    wal_fsyncs: int
    source: str
    """Which counter: kv's count of `WAL.sync` calls or etcd's metric."""

    @property
    def per_write(self) -> float:
        return self.wal_fsyncs / self.writes if self.writes else float("nan")

    @property
    def writes_per_fsync(self) -> float:
        return self.writes / self.wal_fsyncs if self.wal_fsyncs else float("nan")


def own_count_source(kind: str) -> str:
    """How `read_own_counter` counts for a server of ``kind``."""
    return "WAL.sync calls" if kind == "kv" else ETCD_WAL_FSYNCS
