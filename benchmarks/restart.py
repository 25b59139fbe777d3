"""Restart with many keys: how long a server takes to come back, and how much memory it holds.

One measurement, for one server (chapter 2):

1. Start the server on a fresh data directory and *load* ``keys`` keys through its API:
   16-byte keys (``r/`` and 14 digits), 100-byte values, one Put each, from several worker
   processes with many requests in flight (`load_keys`). Loading through the API rather than
   writing a data directory by hand keeps it honest: the server's files are the ones its own
   write path produced (log segments, snapshots, backend), as after a day of real traffic.
2. Read its resident memory (``VmRSS``), stop it with SIGTERM, as an operator would, and time
   the clean stop.
3. Start it again on the same directory and time from the launch to the first Range it
   answers: process start-up, recovery (backend, snapshot, log replay, the key index), and
   for etcd electing itself leader. Read the memory again.
4. Count every key with one Range (``count_only``, the whole key space), check the count,
   and read the memory a last time: a first full pass over the key space may pull in more.

Memory is read from ``/proc/PID/status`` (proc(5)): ``VmRSS`` is the resident total, the sum
of ``RssAnon`` (the heap: what the process built) and ``RssFile`` (pages of mapped files).
etcd's backend, bbolt, maps its database file into memory, so the pages of it etcd has touched
count in etcd's ``RssFile``; kv's SQLite reads its file through the kernel's page cache,
which no process's RSS includes. The JSON keeps all three.
"""

import asyncio
import contextlib
import multiprocessing
import os
import queue
import resource
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path

import grpc

from benchmarks import procstat
from benchmarks.load import START_TIMEOUT, LoadError, value_bytes
from benchmarks.servers import (
    Server,
    ServerKind,
    ServerOptions,
    remove,
    start_server,
    stop_server,
)
from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

KEY_PREFIX = b"r/"
KEY_SIZE = 16
VALUE_SIZE = 100
#: Attempts per key before loading gives up (a failed Put is retried: every key must exist).
ATTEMPTS = 5
#: Seconds between readiness polls when timing the restart.
POLL_INTERVAL = 0.02
#: Seconds the count of every key may take.
COUNT_TIMEOUT = 300.0
#: Puts between two updates of the shared progress counter.
_PROGRESS_STEP = 1000
#: gRPC connections per loading process.
_CONNECTIONS = 4


def restart_key(index: int) -> bytes:
    """Key number ``index`` of the restart test: 16 bytes, ``r/00000000000042``."""
    return KEY_PREFIX + b"%0*d" % (KEY_SIZE - len(KEY_PREFIX), index)


@dataclass(frozen=True, slots=True)
class Memory:
    """A process's memory at one moment, bytes (``/proc/PID/status``)."""

    rss: int
    anon: int
    file: int

    @classmethod
    def of(cls, pid: int) -> "Memory":
        return cls(
            rss=procstat.memory_bytes(pid, "VmRSS"),
            anon=procstat.memory_bytes(pid, "RssAnon"),
            file=procstat.memory_bytes(pid, "RssFile"),
        )


@dataclass(frozen=True, slots=True)
class RestartResult:
    """One server's restart measurement; times in seconds, sizes in bytes."""

    server: str
    keys: int
    load_seconds: float
    load_server_cpu_seconds: float
    memory_loaded: Memory
    """Before the stop, with every key written."""
    stop_seconds: float
    stop_status: int
    """The exit status of the clean stop (0 for both servers)."""
    wal_bytes: int
    """Disk space of the log directory (``member/wal``) after the stop."""
    snap_bytes: int
    """Disk space of ``member/snap``: the backend and snapshot files."""
    startup_seconds: float
    """From launching the restarted server to its first answer."""
    startup_cpu_seconds: float
    """CPU the restarted server used up to that answer (all its threads)."""
    memory_recovered: Memory
    count_seconds: float
    counted: int
    """What the count of every key answered (must be ``keys``)."""
    memory_counted: Memory
    peak_rss: int
    """``VmHWM`` at the end: the most the restarted server had resident."""
    load_other_cpu_share: float = 0.0
    """Share of the machine that other processes used while the keys were loaded."""
    startup_other_cpu_share: float = 0.0
    """Share of the machine that other processes used while the server restarted."""

    @property
    def load_rate(self) -> float:
        """Keys loaded per second."""
        return self.keys / self.load_seconds if self.load_seconds else float("nan")


def measure(
    kind: ServerKind,
    options: ServerOptions,
    keys: int,
    processes: int,
    clients: int,
    progress: Callable[[str], None],
) -> RestartResult:
    """Load ``keys`` keys into a new server of ``kind``, restart it, measure; clean up."""
    server = start_server(kind, options, keep=True)
    try:
        progress(f"{kind}: loading {keys:,} keys, pid {server.pid}")
        cpu_before = procstat.process_cpu_seconds(server.pid)
        noise = _Noise()
        load_seconds = load_keys(server, keys, processes, clients, progress)
        load_cpu = procstat.process_cpu_seconds(server.pid) - cpu_before
        load_other = noise.share(load_cpu)
        memory_loaded = Memory.of(server.pid)
        progress(
            f"{kind}: loaded {keys:,} keys in {load_seconds:.1f} s "
            f"({keys / load_seconds:,.0f}/s), RSS {memory_loaded.rss / 2**20:,.0f} MiB, other "
            f"processes {load_other:.0%} of the machine; stopping"
        )
        stopping = time.perf_counter()
        status = stop_server(server)
        stop_seconds = time.perf_counter() - stopping
        wal_bytes = disk_usage(server.data_dir / "member" / "wal")
        snap_bytes = disk_usage(server.data_dir / "member" / "snap")
        progress(f"{kind}: stopped in {stop_seconds:.2f} s (status {status}); restarting")
        noise = _Noise()
        server = start_server(
            kind,
            _patient(options),
            workdir=server.workdir,
            poll_interval=POLL_INTERVAL,
        )
        startup_cpu = procstat.process_cpu_seconds(server.pid)
        startup_other = noise.share(startup_cpu)
        memory_recovered = Memory.of(server.pid)
        counting = time.perf_counter()
        counted = count_keys(server.endpoint)
        count_seconds = time.perf_counter() - counting
        memory_counted = Memory.of(server.pid)
        peak = procstat.memory_bytes(server.pid, "VmHWM")
        progress(
            f"{kind}: answered {server.startup_seconds:.2f} s after the launch (other "
            f"processes {startup_other:.0%} of the machine), "
            f"RSS {memory_recovered.rss / 2**20:,.0f} MiB; counted {counted:,} keys in "
            f"{count_seconds:.2f} s, RSS {memory_counted.rss / 2**20:,.0f} MiB"
        )
        if counted != keys:
            raise LoadError(f"{kind} counted {counted} keys after the restart, not {keys}")
    finally:
        stop_server(server)
        remove(server)
    return RestartResult(
        server=kind,
        keys=keys,
        load_seconds=load_seconds,
        load_server_cpu_seconds=load_cpu,
        memory_loaded=memory_loaded,
        stop_seconds=stop_seconds,
        stop_status=status,
        wal_bytes=wal_bytes,
        snap_bytes=snap_bytes,
        startup_seconds=server.startup_seconds,
        startup_cpu_seconds=startup_cpu,
        load_other_cpu_share=load_other,
        startup_other_cpu_share=startup_other,
        memory_recovered=memory_recovered,
        count_seconds=count_seconds,
        counted=counted,
        memory_counted=memory_counted,
        peak_rss=peak,
    )


class _Noise:
    """What other processes do to the machine from now on: its busy CPU, less the server's,
    less this process's and its reaped children's (the loading workers)."""

    def __init__(self) -> None:
        self._busy = procstat.machine_busy_seconds()
        self._ours = _own_cpu_seconds()
        self._started = time.perf_counter()

    def share(self, server_cpu_seconds: float) -> float:
        """The share of the whole machine (1.0 = every core) used by others since creation."""
        busy = procstat.machine_busy_seconds() - self._busy
        ours = _own_cpu_seconds() - self._ours
        capacity = (time.perf_counter() - self._started) * procstat.cores()
        return max(0.0, busy - server_cpu_seconds - ours) / capacity


def _own_cpu_seconds() -> float:
    this, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return this.ru_utime + this.ru_stime + children.ru_utime + children.ru_stime


def _patient(options: ServerOptions) -> ServerOptions:
    """``options`` with room for a slow recovery (a million keys in Python takes a while)."""
    return replace(options, start_timeout=max(options.start_timeout, 600.0))


def disk_usage(path: Path) -> int:
    """Bytes of disk the files under ``path`` occupy (like ``du``: allocated blocks)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


def count_keys(endpoint: str) -> int:
    """How many keys the server holds: one linearizable count-only Range over all of them."""
    with grpc.insecure_channel(endpoint) as channel:
        request = rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0", count_only=True)
        response = rpc_pb2_grpc.KVStub(channel).Range(request, timeout=COUNT_TIMEOUT)
        return int(response.count)


# --- loading -------------------------------------------------------------------------------


def load_keys(
    server: Server,
    keys: int,
    processes: int,
    clients: int,
    progress: Callable[[str], None],
    report_every: float = 30.0,
) -> float:
    """Put keys ``0 .. keys-1`` through the API; return the seconds it took.

    ``processes`` worker processes share ``clients`` requests in flight; worker ``w`` writes
    every key whose number is ``w`` modulo ``processes``. Timed from the moment every worker
    is connected until the last one is done.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    done = context.Value("q", 0)
    results: Queue[tuple[int, str | None]] = context.Queue()
    workers = [
        context.Process(
            target=_worker_main,
            args=(server.endpoint, keys, processes, w, clients, barrier, done, results),
            name=f"restart-load-{w}",
        )
        for w in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        try:
            barrier.wait(START_TIMEOUT)
        except threading.BrokenBarrierError:
            raise LoadError("a loading worker did not start") from None
        started = time.perf_counter()
        outcomes: list[str | None] = []
        last_report = started
        while len(outcomes) < processes:
            with contextlib.suppress(queue.Empty):
                outcomes.append(results.get(timeout=1.0)[1])
            if server.process.poll() is not None:
                raise LoadError(f"{server.kind} exited while loading")
            now = time.perf_counter()
            if now - last_report >= report_every:
                last_report = now
                loaded = done.value
                progress(
                    f"{server.kind}: {loaded:,} of {keys:,} keys "
                    f"({loaded / (now - started):,.0f}/s)"
                )
        seconds = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.join(timeout=10.0)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    failures = [outcome for outcome in outcomes if outcome is not None]
    if failures:
        raise LoadError("\n".join(failures))
    return seconds


def _worker_main(
    endpoint: str,
    keys: int,
    processes: int,
    worker: int,
    clients: int,
    barrier: Barrier,
    done: "Synchronized[int]",
    results: "Queue[tuple[int, str | None]]",
) -> None:
    share = clients // processes + (1 if worker < clients % processes else 0)
    try:
        asyncio.run(_load(endpoint, range(worker, keys, processes), share, barrier, done))
        outcome = None
    except BaseException:
        barrier.abort()
        outcome = traceback.format_exc()
    results.put((worker, outcome))


async def _load(
    endpoint: str, indexes: range, clients: int, barrier: Barrier, done: "Synchronized[int]"
) -> None:
    value = value_bytes(VALUE_SIZE, seed=2)
    todo = iter(indexes)
    unreported = 0  # puts of this worker not yet added to ``done``
    # A few connections of its own (not gRPC's one shared connection), so that one TCP stream
    # is not the limit.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with contextlib.AsyncExitStack() as stack:
        stubs: list[rpc_pb2_grpc.KVAsyncStub] = []
        for _ in range(_CONNECTIONS):
            channel = grpc.aio.insecure_channel(endpoint, options=options)
            stubs.append(rpc_pb2_grpc.KVStub(await stack.enter_async_context(channel)))
        for stub in stubs:
            await stub.Range(rpc_pb2.RangeRequest(key=b"restart-ready"), timeout=START_TIMEOUT)
        await asyncio.to_thread(barrier.wait, START_TIMEOUT)

        async def client(stub: "rpc_pb2_grpc.KVAsyncStub") -> None:
            nonlocal unreported
            for index in todo:  # the clients share the iterator: each key goes to one
                request = rpc_pb2.PutRequest(key=restart_key(index), value=value)
                for attempt in range(ATTEMPTS):
                    try:
                        await stub.Put(request, timeout=30.0)
                        break
                    except grpc.aio.AioRpcError:
                        if attempt == ATTEMPTS - 1:
                            raise
                        await asyncio.sleep(0.1)
                unreported += 1
                if unreported >= _PROGRESS_STEP:
                    with done.get_lock():
                        done.value += unreported
                    unreported = 0

        await asyncio.gather(*(client(stubs[i % len(stubs)]) for i in range(max(1, clients))))
        with done.get_lock():
            done.value += unreported


if __name__ == "__main__":  # a quick look: python -m benchmarks.restart kv 20000
    kind = sys.argv[1] if len(sys.argv) > 1 else "kv"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    assert kind in ("kv", "etcd")
    result = measure(
        "kv" if kind == "kv" else "etcd",
        ServerOptions(data_root=Path("/tmp")),
        count,
        2,
        128,
        lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(result)
