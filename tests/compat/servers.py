"""Start and stop one single-member server, the real etcd or kv, with etcd's own member flags.

Both kinds get exactly the same command line (only the program differs), on free loopback ports,
in a fresh data dir, with their log captured to a file. `Server.start()` returns once the server
answers a gRPC Range of the key ``health`` (what ``etcdctl endpoint health`` sends in 3.4): we
poll for readiness with a deadline and never sleep for correctness.

The member and cluster IDs a server reports are not random: etcd derives them from the peer URLs
and the cluster token (etcd: server/etcdserver/api/membership/member.go ``NewMember`` and
cluster.go ``genID``). `Server.member_id` and `Server.cluster_id` compute the values etcd would
choose, so the normaliser replaces exactly those and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc

ServerKind = Literal["etcd", "kv"]

ETCD_BINARY = "/usr/bin/etcd"
ETCDCTL_BINARY = "/usr/bin/etcdctl"
INSTALL_HINT = "apt-get install -y etcd-server etcd-client"

#: Both servers of a comparison use the same member name and token: `member list` shows the
#: name, and the token goes into the member ID.
MEMBER_NAME = "compat"
CLUSTER_TOKEN = "kv-compat"

REPO_ROOT = Path(__file__).resolve().parents[2]

# A RangeRequest for key b"health", serialised by hand (field 1, bytes) so that readiness polling
# does not depend on the generated stubs: etcd's own health check is this very request.
_HEALTH_RANGE_REQUEST = b"\x0a\x06health"
_FRESH_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]

#: Seconds one readiness attempt may wait. etcd accepts connections before it serves them (etcd:
#: embed/serve.go waits for ``ReadyNotify``: elected, own member published), so an attempt that
#: waits still answers as soon as etcd is ready; the bound keeps the deadline and exit check close.
ATTEMPT_TIMEOUT = 0.5


class ServerStartError(RuntimeError):
    """The server exited or did not answer before the deadline; the message holds its log."""


def free_ports(count: int) -> list[int]:
    """Return `count` distinct loopback ports that were free a moment ago (bind port 0)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def etcd_member_id(peer_urls: Sequence[str], token: str) -> int:
    """The member ID etcd gives a member: SHA-1 over sorted peer URLs + token, first 8 bytes."""
    digest = hashlib.sha1("".join(sorted(peer_urls)).encode() + token.encode()).digest()
    return int(struct.unpack(">Q", digest[:8])[0])


def etcd_cluster_id(member_ids: Sequence[int]) -> int:
    """The cluster ID etcd derives: SHA-1 over the sorted member IDs (8 bytes big-endian each)."""
    packed = b"".join(struct.pack(">Q", m) for m in sorted(member_ids))
    return int(struct.unpack(">Q", hashlib.sha1(packed).digest()[:8])[0])


def describe_exit(returncode: int) -> str:
    """``code 1`` or ``killed by SIGTERM``: a signal usually means someone else killed it."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"code {returncode}"


def kv_command() -> list[str]:
    """How to run `kv`: ``python -m kv`` in this very interpreter (main()'s return value is the
    exit code). Not a ``kv`` found on PATH, which may belong to another Python."""
    return [sys.executable, "-m", "kv"]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Flags a test may change; everything else is fixed by `Server.argv`."""

    max_request_bytes: int | None = None
    quota_backend_bytes: int | None = None
    snapshot_count: int | None = None
    #: More flags, e.g. ``--heartbeat-interval=50`` (both servers must know them).
    extra_flags: tuple[str, ...] = ()

    def flags(self) -> list[str]:
        """These options as etcd's flags."""
        named = {
            "--max-request-bytes": self.max_request_bytes,
            "--quota-backend-bytes": self.quota_backend_bytes,
            "--snapshot-count": self.snapshot_count,
        }
        given = [f"{flag}={value}" for flag, value in named.items() if value is not None]
        return given + list(self.extra_flags)


@dataclass(slots=True)
class Server:
    """One single-member cluster: the real etcd or kv, started with identical member flags."""

    kind: ServerKind
    workdir: Path
    options: ServerOptions = field(default_factory=ServerOptions)
    client_port: int = 0
    peer_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    #: A member of a larger cluster (tests/cluster): its name, and ``--initial-cluster``
    #: (empty: a cluster of this one member) and ``--initial-cluster-state``.
    name: str = MEMBER_NAME
    initial_cluster: str = ""
    initial_cluster_state: str = "new"

    def __post_init__(self) -> None:
        if not self.client_port or not self.peer_port:
            self.client_port, self.peer_port = free_ports(2)

    @property
    def label(self) -> str:
        """Short name for messages: ``etcd:PORT`` or ``kv:PORT``."""
        return f"{self.kind}:{self.client_port}"

    @property
    def endpoint(self) -> str:
        """``host:port`` as etcdctl's --endpoints takes it (and prints it back)."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def member_id(self) -> int:
        """The member ID etcd would report for this member (see the module docstring)."""
        return etcd_member_id([self.peer_url], CLUSTER_TOKEN)

    @property
    def cluster_id(self) -> int:
        """The cluster ID etcd derives from the founding members' IDs: those of
        ``--initial-cluster`` (this member alone when it is empty), less this member when it
        joins an existing cluster."""
        if not self.initial_cluster:
            return etcd_cluster_id([self.member_id])
        urls = [entry.split("=", 1)[1] for entry in self.initial_cluster.split(",")]
        if self.initial_cluster_state == "existing":
            urls.remove(self.peer_url)
        return etcd_cluster_id([etcd_member_id([url], CLUSTER_TOKEN) for url in urls])

    def argv(self) -> list[str]:
        """The command line; the flags are etcd's member flags, the same for both kinds."""
        program = [ETCD_BINARY] if self.kind == "etcd" else [*kv_command(), "serve"]
        flags = [
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.initial_cluster or f'{self.name}={self.peer_url}'}",
            f"--initial-cluster-token={CLUSTER_TOKEN}",
            f"--initial-cluster-state={self.initial_cluster_state}",
            "--log-level=info",
        ]
        return program + flags + self.options.flags()

    def launch(self) -> None:
        """Start the process without waiting; `wait_ready` waits. Lets two servers boot at once.

        A server may be launched again after it stopped (same ports, same data dir): the log
        file is appended to, so it holds every run, each headed by its command line.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.kind == "kv":
            # `python -m kv` imports kv from this checkout, installed or not.
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
            )
        with self.log_path.open("ab") as log:
            log.write(("$ " + " ".join(self.argv()) + "\n").encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Poll a gRPC Range of ``health`` until it answers; raise with the log if it never does."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        last_error = "no attempt made"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"{self.label} exited ({describe_exit(self.process.returncode)}) before it "
                    f"answered\n{self.log_tail()}"
                )
            # A fresh channel (and connection) per attempt: a channel that saw "connection
            # refused" backs off for about a second before it dials again, longer than etcd
            # takes to boot. A local subchannel pool keeps gRPC from handing the new channel
            # the old, backed-off connection of the process-wide pool.
            attempt_timeout = min(ATTEMPT_TIMEOUT, max(deadline - time.monotonic(), 0.01))
            with grpc.insecure_channel(self.endpoint, options=_FRESH_CONNECTION) as channel:
                try:
                    range_call: Any = channel.unary_unary("/etcdserverpb.KV/Range")
                    range_call(_HEALTH_RANGE_REQUEST, timeout=attempt_timeout)
                    return
                except grpc.RpcError as error:
                    last_error = f"{error.code()}: {error.details()}"
            time.sleep(0.02)  # polling interval only; readiness is decided by the answer
        raise ServerStartError(
            f"{self.label} did not answer a Range of 'health' within {timeout}s "
            f"(last error: {last_error})\n{self.log_tail()}"
        )

    def start(self, timeout: float = 20.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if the process is still there after `timeout` seconds."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout)

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL (a crash: no cleanup, no flush) and reap the process."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout)

    def backend_committed_index(self) -> int:
        """kv's consistent index as of its backend's last commit: read from the file beside
        the member (a reader sees no open batch), running or not."""
        assert self.kind == "kv", "etcd's backend is a bbolt file"
        path = self.data_dir / "member" / "snap" / "db"
        uri = f"{path.as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'consistent_index'").fetchone()
        return int(row[0])

    def log_tail(self, lines: int = 200) -> str:
        """The last `lines` lines of the server's log, headed by its label."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"--- {self.label}: no log file ---"
        tail = text.splitlines()[-lines:]
        return "\n".join([f"--- {self.label} log ({self.log_path}) ---", *tail])


def start_all(servers: Sequence[Server], timeout: float = 20.0) -> None:
    """Launch every server, then wait for each: they boot in parallel. Stops all on failure."""
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready(timeout)
    except BaseException:
        for server in servers:
            server.stop()
        raise
