"""Start and stop the servers under test: kv and the real etcd 3.4, with the same flags.

Each server is one single-member cluster started with etcd's member flags (kv's ``kv serve``
accepts the same ones), on two free loopback ports, with a fresh data directory under
``data_root``. `running_server` starts it, waits until it answers a Range (a linearizable one,
so etcd has also elected itself leader), and stops it with SIGTERM afterwards, as an operator
would, then removes its directory::

    with running_server("etcd", ServerOptions(data_root=Path("/dev/shm"))) as server:
        print(server.endpoint, server.pid)

The server's output goes to ``server.log`` beside its data directory; if it fails to start,
the error quotes the end of that log.
"""

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import grpc

import kv
from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

ServerKind = Literal["kv", "etcd"]
SERVER_KINDS: tuple[ServerKind, ...] = get_args(ServerKind)

#: The real etcd; Debian's etcd-server package installs it as /usr/bin/etcd.
ETCD_BINARY = "etcd"
#: ``kv serve``, run by this interpreter so it is the kv of this checkout (the ``kv`` console
#: script does the same thing, but PATH may hold another Python's).
KV_COMMAND = (sys.executable, "-c", "from kv.cli import main; raise SystemExit(main())", "serve")
MEMBER_NAME = "bench"
HOST = "127.0.0.1"
#: Seconds to wait for a stopped server to exit before killing it.
STOP_GRACE_SECONDS = 10.0
_LOG_TAIL_CHARS = 2000


class ServerError(RuntimeError):
    """A server did not start, or did not answer in time; the message quotes its log."""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How to run the servers; the same for kv and etcd except where a field says otherwise."""

    data_root: Path
    """Directory under which each server gets a fresh temporary data directory."""
    etcd_unsafe_no_fsync: bool = False
    """Pass etcd's ``--unsafe-no-fsync`` (hidden from ``etcd --help``; in 3.4 since 3.4.10)."""
    start_timeout: float = 30.0
    """Seconds a server may take from launch to its first answer."""


@dataclass(frozen=True, slots=True)
class Server:
    """A running server under test."""

    kind: ServerKind
    endpoint: str
    """``host:port`` of its client URL, as gRPC wants it."""
    process: "subprocess.Popen[bytes]"
    workdir: Path
    """Holds ``data/`` (the ``--data-dir``) and ``server.log``."""

    @property
    def pid(self) -> int:
        """The server's process id (the process whose CPU time the benchmark reads)."""
        return self.process.pid

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.workdir / "server.log"


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:  # all bound at once, so the kernel hands out distinct ports
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def member_flags(data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """etcd's flags for a single-member cluster; kv and etcd both get exactly these."""
    client_url = f"http://{HOST}:{client_port}"
    peer_url = f"http://{HOST}:{peer_port}"
    return [
        f"--name={MEMBER_NAME}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster={MEMBER_NAME}={peer_url}",
    ]


def server_command(kind: ServerKind, flags: list[str], options: ServerOptions) -> list[str]:
    """The command line that starts a server of ``kind`` with the member ``flags``."""
    if kind == "kv":
        return [*KV_COMMAND, *flags]
    extra = ["--unsafe-no-fsync"] if options.etcd_unsafe_no_fsync else []
    return [ETCD_BINARY, *flags, *extra]


def start_server(kind: ServerKind, options: ServerOptions) -> Server:
    """Launch a server of ``kind`` and return once it answers; raise `ServerError` if not."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=options.data_root))
    client_port, peer_port = free_ports(2)
    command = server_command(kind, member_flags(workdir / "data", client_port, peer_port), options)
    with open(workdir / "server.log", "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(kind, f"{HOST}:{client_port}", process, workdir)
    try:
        wait_until_ready(server, options.start_timeout)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_until_ready(server: Server, timeout: float) -> None:
    """Poll the server with a Range until it answers, it exits, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(server.endpoint) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)
        while True:
            if server.process.poll() is not None:
                raise ServerError(
                    f"{server.kind} exited with status {server.process.returncode} "
                    f"before answering:\n{log_tail(server)}"
                )
            try:
                stub.Range(rpc_pb2.RangeRequest(key=b"bench-ready"), timeout=1.0)
                return
            except grpc.RpcError as error:
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"{server.kind} did not answer within {timeout:g}s ({error}):\n"
                        f"{log_tail(server)}"
                    ) from error
            time.sleep(0.1)


def stop_server(server: Server) -> None:
    """Stop the server with SIGTERM (SIGKILL after a grace period) and remove its directory."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    shutil.rmtree(server.workdir, ignore_errors=True)


@contextlib.contextmanager
def running_server(kind: ServerKind, options: ServerOptions) -> Iterator[Server]:
    """A started server of ``kind`` for the ``with`` block; stopped and removed afterwards."""
    server = start_server(kind, options)
    try:
        yield server
    finally:
        stop_server(server)


def filesystem_type(path: Path) -> str:
    """The type of the file system ``path`` is on ("tmpfs", "ext4", ...), from /proc/mounts."""
    resolved = path.resolve()
    best, kind = Path("/"), "unknown"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, mount_point, fs_type, *_ = line.split()
            point = Path(mount_point)
            if resolved.is_relative_to(point) and len(point.parts) >= len(best.parts):
                best, kind = point, fs_type
    return kind


def log_tail(server: Server) -> str:
    """The last lines the server wrote, for error messages."""
    try:
        text = server.log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-_LOG_TAIL_CHARS:]


def server_version(kind: ServerKind) -> str:
    """The version the server reports: etcd's ``etcd --version`` line, kv's package version."""
    if kind == "kv":
        return f"kv {kv.__version__}"
    try:
        output = subprocess.run(
            [ETCD_BINARY, "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        return f"etcd (version unknown: {error})"
    # The first line reads "etcd Version: 3.4.23".
    first = output.splitlines()[0] if output else ""
    return f"etcd {first.partition(':')[2].strip()}" if ":" in first else "etcd"
