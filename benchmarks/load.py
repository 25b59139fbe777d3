"""The load: worker processes that keep many gRPC requests in flight against one server.

Theory of operation. One phase (one workload against one server) runs like this:

1. The parent spawns ``processes`` workers (multiprocessing, *spawn*, so no worker inherits
   the parent's gRPC state). Each opens ``channels`` connections to the server, makes one call
   on each so the connections are up, and waits on a barrier that the parent also waits on.
2. When everyone has arrived, each worker starts its share of ``clients`` coroutines. A
   coroutine makes one request at a time, back to back, on a random key of the key space; the
   coroutines share the worker's connections round robin. So ``clients`` is the number of
   requests in flight over the whole load.
3. Everyone sleeps through ``warmup`` seconds, then the measured window opens and lasts
   ``duration`` seconds. Workers record the latency (``perf_counter_ns``) of each request that
   started and finished inside the window, count failed ones by status code, and measure their
   own CPU time (``process_time``, all threads, so gRPC's C threads count too) and wall time
   over the window. The parent, idle meanwhile, reads the server's and the machine's CPU
   counters when the window opens and closes (the barrier keeps all clocks within a few
   milliseconds of each other).
4. When the window closes, the coroutines finish the request they are in and stop; each
   worker sends its `WorkerResult` to the parent through a queue.

The requests are etcd's Put and Range (a single key, linearizable: etcd's default; or
serializable, answered from the member's own store, with ``serializable=True``), through
the project's `kv.client.KVClient` (``client="kv"``) or through the bare generated stubs
(``client="stub"``: requests built once up front, the least client CPU per request).

Chapters 6-8 add three loads, always through the bare stubs (`benchmarks.calls`): ``txn``, a
compare-and-swap on one of ``keys`` keys; ``keepalive``, keep-alives of ``keys`` leases over
LeaseKeepAlive streams; ``watch``, ``clients`` watchers on the key space's prefix, spread
over ``channels`` Watch streams per process, which count the events they receive. Each call
also says how many of what its workload counts it got (`WorkerResult.counted`): the
compare-and-swaps that succeeded, the events received. A watch load runs beside a put load
that writes the events (`run_phases`: several workloads in one window).
"""

import asyncio
import contextlib
import multiprocessing
import queue
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Literal, get_args

import grpc
import uvloop

from benchmarks import calls as feature_calls
from benchmarks.calls import Call
from benchmarks.procstat import machine_busy_seconds, process_cpu_seconds
from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.client import prefix_end
from kv.server.errors import EtcdError

Operation = Literal["put", "range", "txn", "keepalive", "watch"]
#: The single-key requests every run measures (chapters 1-5); the others are chapters 6-8's.
OPERATIONS: tuple[Operation, ...] = ("put", "range")
#: Loads whose clients read a stream rather than make requests: one client per stream.
STREAMING: tuple[Operation, ...] = ("watch",)
ClientKind = Literal["kv", "stub"]
CLIENT_KINDS: tuple[ClientKind, ...] = get_args(ClientKind)

KEY_PREFIX = b"bench/"
#: Seconds the workers may take to start and connect before the phase is abandoned.
START_TIMEOUT = 60.0
#: A coroutine whose request failed waits this long, so a failing server is not hammered.
ERROR_PAUSE = 0.01

#: What a worker sends back, under its number among all the phase's workers: its result, or
#: the traceback that stopped it.
Outcome = tuple[int, "WorkerResult | str"]


class LoadError(RuntimeError):
    """A worker process failed; the message carries its traceback."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One phase's load: what to send, to whom, how hard and for how long."""

    operation: Operation
    endpoint: str
    keys: int
    """Size of the key space; keys are ``bench/00000000`` and up (``keepalive``: leases)."""
    value_size: int
    clients: int
    """Requests in flight over all processes together (``watch``: watchers)."""
    processes: int
    channels: int
    """gRPC channels (connections) per process (``watch``: one stream each)."""
    warmup: float
    duration: float
    client: ClientKind = "kv"
    seed: int = 1
    serializable: bool = False
    """Ranges only: ask for a serializable read (``RangeRequest.serializable``), which a
    member answers from its own store without asking the leader."""

    def clients_of(self, worker: int) -> int:
        """How many of the ``clients`` coroutines worker number ``worker`` runs."""
        return share(self.clients, self.processes, worker)

    def coroutines_of(self, worker: int) -> int:
        """How many client coroutines worker number ``worker`` runs: one per stream for a
        streaming load, else its share of ``clients``."""
        streaming = self.operation in STREAMING
        return self.channels if streaming else self.clients_of(worker)


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What one worker measured over the window."""

    latencies_ns: list[int]
    """One entry per request that started and finished inside the window."""
    errors: dict[str, int]
    """Failed requests by gRPC status code name."""
    cpu_seconds: float
    wall_seconds: float
    counted: int = 0
    """What the calls that finished inside the window counted: one per request, but for
    ``txn`` only those whose compare held, and for ``watch`` the events received."""


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """Everything measured in one phase, before any aggregation."""

    workload: Workload
    workers: list[WorkerResult]
    wall_seconds: float
    """The window as the parent timed it."""
    server_cpu_seconds: float
    machine_busy_seconds: float
    """CPU seconds all cores spent busy in the window: server, load and everything else."""
    opened_at: float = 0.0
    closed_at: float = 0.0
    """The window on the wall clock (``time.time()``), to match with other records of it."""
    member_cpu_seconds: tuple[float, ...] = ()
    """With several server processes (a cluster's members), each one's CPU seconds, in the
    order their pids were given; ``server_cpu_seconds`` is their sum."""
    beside_cpu_seconds: float = 0.0
    """CPU seconds of the workers of the workloads that ran in the same window (`run_phases`),
    which is neither this load's nor the server's nor anyone else's."""


def share(total: int, parts: int, index: int) -> int:
    """Part number ``index``'s share when ``total`` is split as evenly as can be in ``parts``."""
    each, extra = divmod(total, parts)
    return each + (1 if index < extra else 0)


def key_name(index: int) -> bytes:
    """The key with number ``index`` in the key space."""
    return KEY_PREFIX + b"%08d" % index


def value_bytes(size: int, seed: int) -> bytes:
    """The value every put writes: ``size`` random (so incompressible) bytes."""
    return random.Random(seed).randbytes(size)


# --- the parent's side -------------------------------------------------------------------


def run_phase(
    workload: Workload,
    server_pid: int | Sequence[int],
    on_window: Callable[[], object] | None = None,
) -> PhaseResult:
    """Run one phase against the server at ``workload.endpoint`` whose process is ``server_pid``.

    ``server_pid`` may also be several processes (the members of a cluster, one of which
    ``workload.endpoint`` reaches): their CPU is the server's. ``on_window`` is called right
    after the window opens and right before it closes (to read the server's own counters,
    say); it should be quick.
    """
    return run_phases([workload], server_pid, on_window)[0]


def run_phases(
    workloads: Sequence[Workload],
    server_pid: int | Sequence[int],
    on_window: Callable[[], object] | None = None,
) -> list[PhaseResult]:
    """`run_phase` for several workloads in one window (all workers wait on one barrier; the
    workloads should share ``warmup`` and ``duration``): a result for each, in order."""
    pids = [server_pid] if isinstance(server_pid, int) else list(server_pid)
    context = multiprocessing.get_context("spawn")
    slots = [(w, index) for w in workloads for index in range(w.processes)]
    barrier = context.Barrier(len(slots) + 1)
    results: Queue[Outcome] = context.Queue()
    workers = [
        context.Process(
            target=worker_main,
            args=(workload, index, barrier, results, slot),
            name=f"bench-{slot}",
        )
        for slot, (workload, index) in enumerate(slots)
    ]
    window = max(workload.duration for workload in workloads)
    warmup = max(workload.warmup for workload in workloads)
    for worker in workers:
        worker.start()
    try:
        try:
            barrier.wait(START_TIMEOUT)
        except threading.BrokenBarrierError:
            raise LoadError(_failures(results, len(workers))) from None
        time.sleep(warmup)
        server_before, busy_before = _cpu_seconds(pids), machine_busy_seconds()
        opened, opened_at = time.perf_counter(), time.time()
        if on_window is not None:
            on_window()
        time.sleep(max(0.0, window - (time.perf_counter() - opened)))
        if on_window is not None:
            on_window()
        server_after, busy_after = _cpu_seconds(pids), machine_busy_seconds()
        wall, closed_at = time.perf_counter() - opened, time.time()
        try:
            outcomes = dict(results.get(timeout=START_TIMEOUT) for _ in workers)
        except queue.Empty:
            raise LoadError("a worker sent no result (did it crash?)") from None
    finally:
        for worker in workers:
            worker.join(timeout=5.0)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    done = {slot: o for slot, o in outcomes.items() if isinstance(o, WorkerResult)}
    if len(done) != len(workers):
        raise LoadError("\n".join(str(o) for o in outcomes.values() if isinstance(o, str)))
    members = tuple(b - a for a, b in zip(server_before, server_after, strict=True))
    each = [
        [done[slot] for slot, (w, _) in enumerate(slots) if w is workload] for workload in workloads
    ]
    clients_cpu = sum(worker.cpu_seconds for worker in done.values())
    return [
        PhaseResult(
            workload=workload,
            workers=finished,
            wall_seconds=wall,
            server_cpu_seconds=sum(members),
            machine_busy_seconds=busy_after - busy_before,
            opened_at=opened_at,
            closed_at=closed_at,
            member_cpu_seconds=members if len(pids) > 1 else (),
            beside_cpu_seconds=clients_cpu - sum(w.cpu_seconds for w in finished),
        )
        for workload, finished in zip(workloads, each, strict=True)
    ]


def _cpu_seconds(pids: Sequence[int]) -> list[float]:
    return [process_cpu_seconds(pid) for pid in pids]


def _failures(results: "Queue[Outcome]", count: int) -> str:
    """The tracebacks the workers sent before a broken barrier (waiting briefly for them)."""
    messages = []
    with contextlib.suppress(Exception):
        for _ in range(count):
            messages.append(str(results.get(timeout=5.0)[1]))
    return "\n".join(messages) or "a worker did not reach the start barrier in time"


def fill_key_space(endpoint: str, keys: int, value_size: int, seed: int = 1) -> int:
    """Put every key of the key space that does not exist yet; return how many there were.

    Runs between the put and the range phase (unmeasured), so that every get finds its key:
    random puts for a few seconds usually, but not always, touch every key.
    """
    options = [("grpc.max_receive_message_length", 2**31 - 1)]
    with grpc.insecure_channel(endpoint, options=options) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)
        listing = rpc_pb2.RangeRequest(
            key=KEY_PREFIX, range_end=prefix_end(KEY_PREFIX), keys_only=True
        )
        present = {kv.key for kv in stub.Range(listing, timeout=60.0).kvs}
        missing = [key for key in map(key_name, range(keys)) if key not in present]
        value = value_bytes(value_size, seed)
        batch = 256  # requests in flight at once
        for start in range(0, len(missing), batch):
            futures = [
                stub.Put.future(rpc_pb2.PutRequest(key=key, value=value), timeout=60.0)
                for key in missing[start : start + batch]
            ]
            for future in futures:
                future.result()
    return len(missing)


# --- the worker's side -------------------------------------------------------------------


def worker_main(
    workload: Workload, worker: int, barrier: Barrier, results: "Queue[Outcome]", slot: int = 0
) -> None:
    """A worker process: run the load, send the `WorkerResult` (or a traceback) back under
    ``slot``, its number among all the phase's workers."""
    try:
        # On uvloop, as `kv serve` runs: the load generator takes less of the machine the
        # servers share, whichever server it drives.
        outcome: WorkerResult | str = uvloop.run(_drive(workload, worker, barrier))
    except BaseException:
        barrier.abort()  # the parent and the other workers stop waiting for this one
        outcome = traceback.format_exc()
    results.put((slot, outcome))


@dataclass(slots=True)
class _Window:
    """The measured window, as the worker's coroutines see it."""

    opened_ns: int = 0
    """``perf_counter_ns`` when it opened; 0 while warming up."""
    closed: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    counted: int = 0


async def _drive(workload: Workload, worker: int, barrier: Barrier) -> WorkerResult:
    """The worker's event loop: connect, wait for the others, run the clients, measure."""
    rng = random.Random(f"{workload.seed}/{workload.operation}/{worker}")
    window = _Window()
    streaming = workload.operation in STREAMING
    async with _connections(workload, worker) as calls:
        for call in () if streaming else calls:  # connect now, not in the warm-up
            await call(0)
        await asyncio.to_thread(barrier.wait, START_TIMEOUT)
        clients = [
            asyncio.create_task(_client(calls[i % len(calls)], rng, workload.keys, window))
            for i in range(workload.coroutines_of(worker))
        ]
        await asyncio.sleep(workload.warmup)
        cpu_before, window.opened_ns = time.process_time(), time.perf_counter_ns()
        await asyncio.sleep(workload.duration)
        window.closed = True
        cpu = time.process_time() - cpu_before
        wall = (time.perf_counter_ns() - window.opened_ns) / 1e9
        for client in clients if streaming else ():
            client.cancel()  # a stream may wait for ever for its next message
        await asyncio.gather(*clients, return_exceptions=streaming)
    return WorkerResult(window.latencies_ns, dict(window.errors), cpu, wall, window.counted)


async def _client(call: Call, rng: random.Random, keys: int, window: _Window) -> None:
    """One client: requests back to back until the window closes."""
    clock = time.perf_counter_ns
    while not window.closed:
        started = clock()
        try:
            counted = await call(rng.randrange(keys))
        except (grpc.aio.AioRpcError, EtcdError) as error:
            if window.opened_ns and not window.closed:
                window.errors[_status_name(error)] += 1
            await asyncio.sleep(ERROR_PAUSE)
            continue
        if 0 < window.opened_ns <= started and not window.closed:
            window.latencies_ns.append(clock() - started)
            window.counted += counted


def _status_name(error: grpc.aio.AioRpcError | EtcdError) -> str:
    code = error.code if isinstance(error, EtcdError) else error.code()
    return code.name


@contextlib.asynccontextmanager
async def _connections(workload: Workload, worker: int) -> AsyncIterator[list[Call]]:
    """``workload.channels`` connections to the server, each as a `Call`."""
    if workload.operation not in OPERATIONS:
        async with _feature_calls(workload, worker) as calls:
            yield calls
        return
    keys = [key_name(index) for index in range(workload.keys)]
    value = value_bytes(workload.value_size, workload.seed)
    connect = feature_calls.kv_client_call if workload.client == "kv" else feature_calls.stub_call
    async with contextlib.AsyncExitStack() as stack:
        calls = [
            await stack.enter_async_context(
                connect(workload.endpoint, workload.operation, keys, value, workload.serializable)
            )
            for _ in range(workload.channels)
        ]
        yield calls


@contextlib.asynccontextmanager
async def _feature_calls(workload: Workload, worker: int) -> AsyncIterator[list[Call]]:
    """Chapters 6-8's calls (`benchmarks.calls`), one per channel."""
    async with feature_calls.channels(workload.endpoint, workload.channels) as channels:
        if workload.operation == "txn":
            # The worker's own keys (every processes-th), their revisions shared by its
            # clients, as one cache would be.
            keys = [key_name(i) for i in range(worker, workload.keys, workload.processes)]
            value = value_bytes(workload.value_size, workload.seed)
            seen = await feature_calls.mod_revisions(channels[0], keys)
            yield [feature_calls.txn_call(channel, keys, value, seen) for channel in channels]
        elif workload.operation == "keepalive":
            leases = await feature_calls.grant_leases(
                channels[0], share(workload.keys, workload.processes, worker)
            )
            streams = [feature_calls.KeepAliveStream(channel) for channel in channels]
            try:
                yield [feature_calls.keepalive_call(stream, leases) for stream in streams]
            finally:
                for stream in streams:
                    stream.close()
        else:
            watchers = workload.clients_of(worker)
            yield [
                await feature_calls.watch_call(
                    channel, KEY_PREFIX, share(watchers, len(channels), index)
                )
                for index, channel in enumerate(channels)
            ]
