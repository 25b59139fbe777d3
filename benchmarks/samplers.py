"""The two profilers `benchmarks.profile` runs on a server, and how each one's samples are sorted.

* **perf** (Debian's ``linux-perf``) samples every thread, C and kernel included: a sample is
  sorted by the shared library its user code ran in, or for kernel code by the system call it
  served (`perf_buckets`).
* **py-spy** samples the Python stack of the thread that holds the GIL: a sample is sorted by
  kv's component, the innermost frame from kv's source deciding (`py_spy_buckets`).

Each has a ``*_unavailable`` check (why it cannot run here, or None) and a ``*_record`` that
starts it on a pid for some seconds, sampling `RATE` times a second.
"""

import math
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

#: Samples per second of each profiler.
RATE = 99


# --- perf ------------------------------------------------------------------------------------

#: User-space code by shared library (a substring of its path).
_LIBRARIES = (
    ("libpython", "Python interpreter (kv, asyncio, gRPC's Python layer)"),
    ("cygrpc", "gRPC core (C++ and Cython)"),
    ("_message", "protobuf (upb, C)"),
    ("sqlite3", "SQLite (C)"),
    ("_asyncio", "asyncio's C parts"),
    ("crc32c", "CRC-32C of WAL records (C)"),
    ("libc.so", "libc (malloc, memcpy, locks)"),
)
#: Kernel code by the system call it serves (the frame under ``do_syscall_64``).
_SYSCALLS = (
    (("futex",), "kernel: futex (threads handing over the GIL and work)"),
    (
        ("sendmsg", "recvmsg", "sendto", "recvfrom", "writev", "readv"),
        "kernel: network (loopback TCP)",
    ),
    (("epoll", "poll", "select"), "kernel: epoll (event loops waiting)"),
    (("fdatasync", "fsync"), "kernel: fsync (CPU side)"),
    (("pwrite", "pread", "lseek", "fallocate", "ftruncate"), "kernel: file I/O (WAL, SQLite)"),
)


def perf_unavailable() -> str | None:
    """Why perf cannot profile here, or None if it can."""
    if shutil.which("perf") is None:
        return "perf is not installed (apt-get install linux-perf)"
    try:
        subprocess.run(
            ["perf", "record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
            capture_output=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        return f"perf cannot record here: {detail.decode(errors='replace').strip() or error}"
    return None


def perf_record(pid: int, seconds: float, output: Path) -> "subprocess.Popen[bytes]":
    """Start sampling every thread of ``pid`` for ``seconds`` into ``output``."""
    return subprocess.Popen(
        [
            *("perf", "record", "-q", "-e", "cpu-clock", "-F", str(RATE), "-g", "-p", str(pid)),
            *("-o", str(output), "--", "sleep", f"{seconds:g}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def perf_buckets(data: Path) -> Counter[str]:
    """Samples of a ``perf record -g`` file, by where the CPU was (see the module docstring)."""
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "ip,sym,dso"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Counter(_perf_bucket(block.splitlines()) for block in script.split("\n\n") if block)


def _perf_bucket(frames: Sequence[str]) -> str:
    frames = [frame.strip() for frame in frames if frame.strip()]
    if not frames:
        return "unknown"
    if "kernel.kallsyms" not in frames[0]:
        for fragment, name in _LIBRARIES:
            if fragment in frames[0]:
                return name
        return "other user-space code"
    symbols = [frame.split()[1] if len(frame.split()) > 1 else "" for frame in frames]
    if "do_syscall_64" in symbols:
        below = symbols[: symbols.index("do_syscall_64")]
        call = next(
            (s for s in reversed(below) if s.startswith(("__x64_sys_", "ksys_", "__do_sys_"))),
            below[-1] if below else "",
        )
        for names, bucket in _SYSCALLS:
            if any(name in call for name in names):
                return bucket
        if any("eventfd" in s for s in below):
            return "kernel: epoll (event loops waiting)"
        if any(s.startswith(("sock_", "tcp_", "unix_")) for s in below):
            return "kernel: network (loopback TCP)"
        if any(s.startswith("ext4_") for s in below):
            return "kernel: file I/O (WAL, SQLite)"
        return "kernel: other system calls"
    if any("softirq" in s or "net_rx" in s for s in symbols):
        return "kernel: interrupts (network softirq)"
    return "kernel: scheduling and interrupts"


# --- py-spy ----------------------------------------------------------------------------------

_PEER = "kv/server/peers/"  # the transport, its frames and its streams
#: kv's components by source path (the innermost kv frame of a stack decides; the peer
#: transport's stacks are split by whether gRPC's stream write is running under it).
_COMPONENTS = (
    ("kv/wal/", "kv: WAL (records, CRC, write)"),
    ("kv/backend/", "kv: SQLite backend"),
    ("kv/mvcc/", "kv: MVCC store"),
    ("kv/server/replica/", "kv: Raft loop (Ready, apply, proposals, reads; kv.server.replica)"),
    ("kv/server/disk/raft_disk.py", "kv: Raft's disk (persist a Ready)"),
    (_PEER, "kv: peer transport (send, receive)"),
    ("kv/server/raft_wire.py", "kv: peer messages to and from protobuf"),
    ("kv/raft/", "kv: Raft core (kv.raft)"),
    ("kv/server/applied/apply.py", "kv: apply"),
    ("kv/server/applied/state_machine.py", "kv: apply"),
    ("kv/server/", "kv: request handling (services, node, validation, quota)"),
)


def py_spy_unavailable() -> str | None:
    """Why py-spy cannot profile here, or None if it can."""
    if shutil.which("py-spy") is None:
        return "py-spy is not installed (pip install py-spy)"
    return None


def py_spy_record(pid: int, seconds: float, output: Path) -> "subprocess.Popen[bytes]":
    """Start sampling the GIL-holding thread of ``pid`` for ``seconds`` into ``output``."""
    return subprocess.Popen(
        [
            *("py-spy", "record", "--nonblocking", "--gil", "--full-filenames", "-f", "raw"),
            *("-r", str(RATE), "-d", str(math.ceil(seconds)), "-p", str(pid), "-o", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def py_spy_buckets(lines: Iterable[str]) -> Counter[str]:
    """Samples of a py-spy raw (collapsed) file, by kv component."""
    found: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack:
            found[_py_spy_bucket(stack.split(";"))] += int(count)
    return found


def _py_spy_bucket(frames: Sequence[str]) -> str:
    for depth in range(len(frames) - 1, -1, -1):  # innermost first
        for path, name in _COMPONENTS:
            if f"/{path}" in frames[depth]:
                inner = frames[depth + 1 :]
                if path == _PEER and any("/grpc/" in frame for frame in inner):
                    return "kv: peer transport, inside gRPC's stream write (one per batch)"
                return name
    leaf = frames[-1]
    if "asyncio/events.py" in leaf and "Handle._run" in leaf:
        return "C callbacks run by the event loop (gRPC's Cython core)"
    if any("/grpc/" in frame for frame in frames):
        return "gRPC's Python layer"
    if any("/google/protobuf/" in frame for frame in frames):
        return "protobuf's Python layer"
    if any(f"/{mod}" in leaf for mod in ("asyncio/", "selectors.py", "concurrent/", "threading")):
        return "event loop, tasks, threads"
    return "other Python"
