"""Start and stop a three-member cluster of either kind, kv or the real etcd 3.4, same flags.

Each member is an ordinary `benchmarks.servers.Server` (its own directory with ``data/`` and
``server.log``, its own process), started with etcd's cluster flags: a name (``m0``, ``m1``,
...), free loopback ports for clients and peers, the whole ``--initial-cluster``, one cluster
token, ``--initial-cluster-state new``, and the Raft timing (``--heartbeat-interval``,
``--election-timeout``, ``--snapshot-count``). kv and etcd get exactly the same flags; only
the program differs. All members' directories live under one temporary directory on
``data_root`` (so all of them share one disk, as on one machine)::

    with running_cluster("etcd", ServerOptions(data_root=Path("/tmp"))) as cluster:
        leader = cluster.leader()
        cluster.kill(leader)      # SIGKILL: a crash, nothing flushed
        cluster.restart(leader)   # the same flags on the same data directory

`start_cluster` launches every member first (none can elect a leader alone) and returns once
each one answers a linearizable Range, i.e. once the cluster has a leader and every member
serves clients.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from benchmarks.servers import (
    HOST,
    Server,
    ServerError,
    ServerKind,
    ServerOptions,
    free_ports,
    server_command,
    stop_server,
    wait_until_ready,
)
from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

CLUSTER_TOKEN = "bench-cluster"
#: A log line that reports a problem: an error, critical or fatal level, a traceback, a panic.
_PROBLEM = re.compile(r"^\S+ \S+ [ECF] \| |^Traceback |^panic: ")
#: Seconds one Status call may take before the member counts as not answering.
STATUS_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class Timing:
    """The Raft flags both kinds get: etcd's defaults unless told otherwise."""

    heartbeat_ms: int = 100
    election_ms: int = 1000
    snapshot_count: int = 100_000


def cluster_flags(
    index: int,
    data_dir: Path,
    client_ports: Sequence[int],
    peer_ports: Sequence[int],
    timing: Timing,
) -> list[str]:
    """etcd's flags for member ``index`` of a new cluster on these ports; kv gets the same."""
    peers = [f"http://{HOST}:{port}" for port in peer_ports]
    client_url = f"http://{HOST}:{client_ports[index]}"
    initial = ",".join(f"{member_name(i)}={url}" for i, url in enumerate(peers))
    return [
        f"--name={member_name(index)}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peers[index]}",
        f"--initial-advertise-peer-urls={peers[index]}",
        f"--initial-cluster={initial}",
        f"--initial-cluster-token={CLUSTER_TOKEN}",
        "--initial-cluster-state=new",
        f"--heartbeat-interval={timing.heartbeat_ms}",
        f"--election-timeout={timing.election_ms}",
        f"--snapshot-count={timing.snapshot_count}",
    ]


def member_name(index: int) -> str:
    return f"m{index}"


@dataclass(slots=True)
class Cluster:
    """A running cluster: its members by index (``m0`` is index 0), and how to start each."""

    kind: ServerKind
    root: Path
    """The temporary directory that holds every member's directory."""
    members: list[Server]
    commands: list[list[str]]
    """Each member's command line, to start it again the same way."""
    options: ServerOptions
    member_ids: list[int] = field(default_factory=list)
    """Each member's Raft id, as its Status header says."""

    @property
    def endpoints(self) -> list[str]:
        return [member.endpoint for member in self.members]

    @property
    def pids(self) -> list[int]:
        return [member.pid for member in self.members]

    def alive(self, index: int) -> bool:
        return self.members[index].process.poll() is None

    def index_of(self, member_id: int) -> int:
        """The index of the member with Raft id ``member_id``."""
        return self.member_ids.index(member_id)

    def status(self, index: int, timeout: float = STATUS_TIMEOUT) -> rpc_pb2.StatusResponse:
        """Member ``index``'s Maintenance.Status (raises `grpc.RpcError` if it does not answer)."""
        return status(self.members[index].endpoint, timeout)

    def leader(self, timeout: float = 30.0) -> int:
        """The index of the member that leads, once one that is running says it leads."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(len(self.members)):
                if not self.alive(index):
                    continue
                with contextlib.suppress(grpc.RpcError):
                    answer = self.status(index)
                    if answer.leader and answer.leader == answer.header.member_id:
                        return index
            if time.monotonic() > deadline:
                raise ServerError(f"{self.kind}: no member led within {timeout:g}s")
            time.sleep(0.05)

    def follower(self, leader: int) -> int:
        """The first member, in index order, that is not ``leader``."""
        return next(index for index in range(len(self.members)) if index != leader)

    def kill(self, index: int) -> float:
        """SIGKILL member ``index`` (a crash); return ``time.perf_counter()`` just before."""
        member = self.members[index]
        killed_at = time.perf_counter()
        os.kill(member.pid, signal.SIGKILL)
        member.process.wait()
        return killed_at

    def log_problems(self, limit: int = 20) -> list[str]:
        """Error lines in the members' logs so far (etcd's and kv's logs share a format:
        ``date time LEVEL | ...``; levels E, C and F, a Python traceback, a Go panic), each
        prefixed with its member's name; at most ``limit`` of them."""
        found = []
        for index, member in enumerate(self.members):
            try:
                text = member.log_path.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if _PROBLEM.search(line):
                    found.append(f"{member_name(index)}: {line.strip()}")
        return found[:limit]

    def restart(self, index: int, timeout: float | None = None) -> Server:
        """Start member ``index`` again on its data directory, with the same command line;
        return once it answers (its `Server.startup_seconds` says how long that took)."""
        old = self.members[index]
        if old.process.poll() is None:
            raise ServerError(f"{self.kind} {member_name(index)} is still running")
        member = _launch(self.kind, self.commands[index], old.workdir, old.endpoint, self.options)
        self.members[index] = member
        ready_at = wait_until_ready(member, timeout or self.options.start_timeout)
        member = replace(member, ready_at=ready_at)
        self.members[index] = member
        return member


def status(endpoint: str, timeout: float = STATUS_TIMEOUT) -> rpc_pb2.StatusResponse:
    """One Maintenance.Status call to ``endpoint`` on a channel of its own."""
    with grpc.insecure_channel(endpoint) as channel:
        answer: rpc_pb2.StatusResponse = rpc_pb2_grpc.MaintenanceStub(channel).Status(
            rpc_pb2.StatusRequest(), timeout=timeout
        )
        return answer


def _launch(
    kind: ServerKind, command: list[str], workdir: Path, endpoint: str, options: ServerOptions
) -> Server:
    started_at = time.perf_counter()
    with open(workdir / "server.log", "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=options.cwd,
        )
    return Server(kind, endpoint, process, workdir, process.pid, True, started_at)


def start_cluster(
    kind: ServerKind, options: ServerOptions, size: int = 3, timing: Timing = Timing()
) -> Cluster:
    """Launch ``size`` members of a new cluster of ``kind``; return once every one answers."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-cluster-", dir=options.data_root))
    ports = free_ports(2 * size)
    clients, peers = ports[:size], ports[size:]
    cluster = Cluster(kind, root, [], [], options)
    try:
        for index in range(size):
            workdir = root / member_name(index)
            workdir.mkdir()
            flags = cluster_flags(index, workdir / "data", clients, peers, timing)
            command = server_command(kind, flags, options)
            cluster.commands.append(command)
            endpoint = f"{HOST}:{clients[index]}"
            cluster.members.append(_launch(kind, command, workdir, endpoint, options))
        for index, member in enumerate(cluster.members):
            ready_at = wait_until_ready(member, options.start_timeout)
            cluster.members[index] = replace(member, ready_at=ready_at)
        cluster.member_ids = [cluster.status(index).header.member_id for index in range(size)]
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    """Stop every member still running (SIGTERM, all at once), then remove the directory."""
    running = [member for member in cluster.members if member.process.poll() is None]
    for member in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member.pid, signal.SIGTERM)
    for member in running:
        stop_server(member)  # waits, and kills it if it does not stop in time
    shutil.rmtree(cluster.root, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(
    kind: ServerKind, options: ServerOptions, size: int = 3, timing: Timing = Timing()
) -> Iterator[Cluster]:
    """A started cluster for the ``with`` block; stopped and removed afterwards."""
    cluster = start_cluster(kind, options, size, timing)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
