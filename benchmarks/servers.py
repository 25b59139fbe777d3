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

Two variations serve chapter 2's measurements: ``prefix`` runs the server under another
command (``strace ... --``, see `benchmarks.fsyncs`), and ``workdir`` with ``keep=True``
starts a server on the data directory a stopped one left behind (a restart)::

    server = start_server("kv", options, keep=True)
    stop_server(server)                                   # clean stop, data kept
    again = start_server("kv", options, workdir=server.workdir)
"""

import contextlib
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

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
#: This checkout: the directory that holds the ``kv`` and ``benchmarks`` packages.
REPOSITORY = Path(__file__).resolve().parents[1]
#: ``--sources``: which kv a run's servers run (`kv_sources`).
SOURCES = ("head", "worktree", "live")
#: What a server run from a copy of the checkout needs (`frozen_sources`).
_PACKAGES = ("kv", "benchmarks")
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
    kv_command: tuple[str, ...] = KV_COMMAND
    """How to run ``kv serve`` (`benchmarks.kv_counters` runs it with counters on SIGUSR1)."""
    start_timeout: float = 30.0
    """Seconds a server may take from launch to its first answer."""
    cwd: Path | None = None
    """The directory servers run in (None: this one). ``kv serve`` imports the ``kv`` package
    from there first: `frozen_sources` makes one that holds a copy taken at a given moment."""


@dataclass(frozen=True, slots=True)
class Server:
    """A running server under test."""

    kind: ServerKind
    endpoint: str
    """``host:port`` of its client URL, as gRPC wants it."""
    process: "subprocess.Popen[bytes]"
    """What was launched: the server itself, or the ``prefix`` command that runs it."""
    workdir: Path
    """Holds ``data/`` (the ``--data-dir``) and ``server.log``."""
    server_pid: int
    """The server's own process id: ``process.pid`` unless a ``prefix`` command runs it."""
    keep: bool = False
    """Leave ``workdir`` in place when the server stops (for a restart)."""
    started_at: float = 0.0
    """``time.perf_counter()`` just before the launch."""
    ready_at: float = 0.0
    """``time.perf_counter()`` when the server first answered a Range."""

    @property
    def pid(self) -> int:
        """The server's process id (the process whose CPU time the benchmark reads)."""
        return self.server_pid

    @property
    def data_dir(self) -> Path:
        """The server's ``--data-dir``."""
        return self.workdir / "data"

    @property
    def startup_seconds(self) -> float:
        """From the launch to the first answered Range: process start, recovery, election."""
        return self.ready_at - self.started_at

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
        return [*options.kv_command, *flags]
    extra = ["--unsafe-no-fsync"] if options.etcd_unsafe_no_fsync else []
    return [ETCD_BINARY, *flags, *extra]


def start_server(
    kind: ServerKind,
    options: ServerOptions,
    *,
    prefix: Sequence[str] = (),
    workdir: Path | None = None,
    keep: bool = False,
    poll_interval: float = 0.1,
) -> Server:
    """Launch a server of ``kind`` and return once it answers; raise `ServerError` if not.

    ``prefix`` is a command that runs the server (it must end in ``--`` or the like, and
    start the server as its only child). ``workdir`` reuses a stopped server's directory
    (implies ``keep``); by default a fresh one is made under ``options.data_root``. The
    server's log is appended to, so a restarted server's log follows the first run's.
    ``poll_interval`` is how often readiness is polled: `Server.startup_seconds` is that
    precise.
    """
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=options.data_root))
    else:
        keep = True
    client_port, peer_port = free_ports(2)
    command = server_command(kind, member_flags(workdir / "data", client_port, peer_port), options)
    started_at = time.perf_counter()
    with open(workdir / "server.log", "ab") as log:
        process = subprocess.Popen(
            [*prefix, *command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=options.cwd,
        )
    server = Server(kind, f"{HOST}:{client_port}", process, workdir, process.pid, keep, started_at)
    try:
        if prefix:
            server_pid = _child_running(process, command[0], options.start_timeout)
            server = replace(server, server_pid=server_pid)
        ready_at = wait_until_ready(server, options.start_timeout, poll_interval)
    except BaseException:
        stop_server(server)
        raise
    return replace(server, ready_at=ready_at)


def _child_running(process: "subprocess.Popen[bytes]", program: str, timeout: float) -> int:
    """The process id of the child of ``process`` that runs ``program`` (the server a prefix
    command starts; strace, for one, also forks short-lived helpers of its own)."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"the prefix command exited with status {process.returncode}")
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if argv[0].decode(errors="replace") == program:
                    return int(pid)
        time.sleep(0.01)
    raise ServerError(f"the prefix command started no {program} within {timeout:g}s")


def wait_until_ready(server: Server, timeout: float, poll_interval: float = 0.1) -> float:
    """Poll the server with a Range until it answers, it exits, or ``timeout`` seconds pass.

    Returns ``time.perf_counter()`` at the first answer. Each attempt uses a new channel: a
    channel whose connection was refused waits (gRPC's reconnect backoff, a second or more)
    before it tries again, which would blur the moment the server became ready.
    """
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise ServerError(
                f"{server.kind} exited with status {server.process.returncode} "
                f"before answering:\n{log_tail(server)}"
            )
        with grpc.insecure_channel(server.endpoint) as channel:
            try:
                rpc_pb2_grpc.KVStub(channel).Range(
                    rpc_pb2.RangeRequest(key=b"bench-ready"), timeout=1.0
                )
                return time.perf_counter()
            except grpc.RpcError as error:
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"{server.kind} did not answer within {timeout:g}s ({error}):\n"
                        f"{log_tail(server)}"
                    ) from error
        time.sleep(poll_interval)


def stop_server(server: Server) -> int:
    """Stop the server with SIGTERM (SIGKILL after a grace period); return its exit status.

    Its directory is removed unless the server was started with ``keep``. The signal goes to
    the server itself, not to a prefix command running it; that command is waited for too.
    """
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.server_pid, signal.SIGTERM)
        try:
            server.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.server_pid, signal.SIGKILL)
            server.process.kill()
            server.process.wait()
    if not server.keep:
        remove(server)
    return server.process.returncode


def remove(server: Server) -> None:
    """Remove a stopped server's directory (its data and its log)."""
    shutil.rmtree(server.workdir, ignore_errors=True)


@contextlib.contextmanager
def running_server(
    kind: ServerKind, options: ServerOptions, *, prefix: Sequence[str] = ()
) -> Iterator[Server]:
    """A started server of ``kind`` for the ``with`` block; stopped and removed afterwards."""
    server = start_server(kind, options, prefix=prefix)
    try:
        yield server
    finally:
        stop_server(server)


@contextlib.contextmanager
def frozen_sources(revision: str | None = "HEAD") -> Iterator[Path]:
    """A temporary directory holding this checkout's ``kv`` and ``benchmarks`` packages as
    committed at ``revision`` (None: as the working tree has them now), removed afterwards.

    A run that starts kv servers over several minutes gives every one of them the same code
    when they run in it (``ServerOptions(cwd=...)``): the working tree may change meanwhile
    (someone editing kv), and a cluster whose members run different versions measures
    something else, if it works at all. A commit is also code someone meant to be whole.
    """
    root = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    try:
        if revision is None:
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results")
            for package in _PACKAGES:
                shutil.copytree(REPOSITORY / package, root / package, ignore=ignore)
        else:
            archive = subprocess.run(
                ["git", "-C", str(REPOSITORY), "archive", "--format=tar", revision, *_PACKAGES],
                capture_output=True,
                check=True,
            ).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(root, filter="data")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def kv_sources(choice: str, parameters: dict[str, Any]) -> Iterator[Path | None]:
    """The directory kv's servers run from for ``--sources`` ``choice`` (one of `SOURCES`:
    a copy of HEAD, a copy of the working tree, or None for the checkout itself), for the
    ``with`` block; records in ``parameters`` which code that is (``kv_commit`` for HEAD,
    and ``kv_sources``, the digest of its ``kv`` package)."""
    with contextlib.ExitStack() as stack:
        sources = None
        if choice != "live":
            revision = "HEAD" if choice == "head" else None
            sources = stack.enter_context(frozen_sources(revision))
        if choice == "head":
            parameters["kv_commit"] = commit_of("HEAD")
        parameters["kv_sources"] = sources_digest(sources or REPOSITORY)
        yield sources


def commit_of(revision: str = "HEAD") -> str:
    """The short commit id of ``revision`` in this checkout."""
    return subprocess.run(
        ["git", "-C", str(REPOSITORY), "rev-parse", "--short", revision],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def sources_digest(root: Path, package: str = "kv") -> str:
    """A short SHA-256 over the names and contents of ``package``'s files under ``root``:
    which code a run's servers ran, even when the checkout had uncommitted changes."""
    digest = hashlib.sha256()
    for path in sorted((root / package).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def filesystem_type(path: Path) -> str:
    """The type of the file system ``path`` is on ("tmpfs", "ext4", ...), from /proc/mounts."""
    return filesystem(path)[1]


def filesystem(path: Path) -> tuple[str, str]:
    """The device and the type of the file system ``path`` is on ("/dev/vda", "ext4")."""
    resolved = path.resolve()
    best, found = Path("/"), ("unknown", "unknown")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            device, mount_point, fs_type, *_ = line.split()
            point = Path(mount_point)
            if resolved.is_relative_to(point) and len(point.parts) >= len(best.parts):
                best, found = point, (device, fs_type)
    return found


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
