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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Literal, get_args

import grpc

from benchmarks.procstat import machine_busy_seconds, process_cpu_seconds
from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.client import KVClient, prefix_end
from kv.server.errors import EtcdError

Operation = Literal["put", "range"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)
ClientKind = Literal["kv", "stub"]
CLIENT_KINDS: tuple[ClientKind, ...] = get_args(ClientKind)

KEY_PREFIX = b"bench/"
#: Seconds one request may take before it counts as failed (KVClient's default too).
REQUEST_TIMEOUT = 5.0
#: Seconds the workers may take to start and connect before the phase is abandoned.
START_TIMEOUT = 60.0
#: A coroutine whose request failed waits this long, so a failing server is not hammered.
ERROR_PAUSE = 0.01

#: One request on the key with this index; what a client coroutine awaits in its loop.
Call = Callable[[int], Awaitable[object]]
#: What a worker sends back: its result, or the traceback that stopped it.
Outcome = tuple[int, "WorkerResult | str"]


class LoadError(RuntimeError):
    """A worker process failed; the message carries its traceback."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One phase's load: what to send, to whom, how hard and for how long."""

    operation: Operation
    endpoint: str
    keys: int
    """Size of the key space; keys are ``bench/00000000`` and up."""
    value_size: int
    clients: int
    """Requests in flight over all processes together."""
    processes: int
    channels: int
    """gRPC channels (connections) per process."""
    warmup: float
    duration: float
    client: ClientKind = "kv"
    seed: int = 1
    serializable: bool = False
    """Ranges only: ask for a serializable read (``RangeRequest.serializable``), which a
    member answers from its own store without asking the leader."""

    def clients_of(self, worker: int) -> int:
        """How many of the ``clients`` coroutines worker number ``worker`` runs."""
        share, extra = divmod(self.clients, self.processes)
        return share + (1 if worker < extra else 0)


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What one worker measured over the window."""

    latencies_ns: list[int]
    """One entry per request that started and finished inside the window."""
    errors: dict[str, int]
    """Failed requests by gRPC status code name."""
    cpu_seconds: float
    wall_seconds: float


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
    pids = [server_pid] if isinstance(server_pid, int) else list(server_pid)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workload.processes + 1)
    results: Queue[Outcome] = context.Queue()
    workers = [
        context.Process(
            target=worker_main, args=(workload, index, barrier, results), name=f"bench-{index}"
        )
        for index in range(workload.processes)
    ]
    for worker in workers:
        worker.start()
    try:
        try:
            barrier.wait(START_TIMEOUT)
        except threading.BrokenBarrierError:
            raise LoadError(_failures(results, len(workers))) from None
        time.sleep(workload.warmup)
        server_before, busy_before = _cpu_seconds(pids), machine_busy_seconds()
        opened, opened_at = time.perf_counter(), time.time()
        if on_window is not None:
            on_window()
        time.sleep(max(0.0, workload.duration - (time.perf_counter() - opened)))
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
    finished = [outcome for outcome in outcomes.values() if isinstance(outcome, WorkerResult)]
    if len(finished) != len(workers):
        raise LoadError("\n".join(str(o) for o in outcomes.values() if isinstance(o, str)))
    members = tuple(b - a for a, b in zip(server_before, server_after, strict=True))
    return PhaseResult(
        workload=workload,
        workers=finished,
        wall_seconds=wall,
        server_cpu_seconds=sum(members),
        machine_busy_seconds=busy_after - busy_before,
        opened_at=opened_at,
        closed_at=closed_at,
        member_cpu_seconds=members if len(pids) > 1 else (),
    )


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
    workload: Workload, worker: int, barrier: Barrier, results: "Queue[Outcome]"
) -> None:
    """A worker process: run the load, send the `WorkerResult` (or a traceback) back."""
    try:
        outcome: WorkerResult | str = asyncio.run(_drive(workload, worker, barrier))
    except BaseException:
        barrier.abort()  # the parent and the other workers stop waiting for this one
        outcome = traceback.format_exc()
    results.put((worker, outcome))


@dataclass(slots=True)
class _Window:
    """The measured window, as the worker's coroutines see it."""

    opened_ns: int = 0
    """``perf_counter_ns`` when it opened; 0 while warming up."""
    closed: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


async def _drive(workload: Workload, worker: int, barrier: Barrier) -> WorkerResult:
    """The worker's event loop: connect, wait for the others, run the clients, measure."""
    rng = random.Random(f"{workload.seed}/{workload.operation}/{worker}")
    window = _Window()
    async with _connections(workload) as calls:
        for call in calls:  # connect now, not in the warm-up
            await call(0)
        await asyncio.to_thread(barrier.wait, START_TIMEOUT)
        clients = [
            asyncio.create_task(_client(calls[i % len(calls)], rng, workload.keys, window))
            for i in range(workload.clients_of(worker))
        ]
        await asyncio.sleep(workload.warmup)
        cpu_before, window.opened_ns = time.process_time(), time.perf_counter_ns()
        await asyncio.sleep(workload.duration)
        window.closed = True
        cpu = time.process_time() - cpu_before
        wall = (time.perf_counter_ns() - window.opened_ns) / 1e9
        await asyncio.gather(*clients)
    return WorkerResult(window.latencies_ns, dict(window.errors), cpu, wall)


async def _client(call: Call, rng: random.Random, keys: int, window: _Window) -> None:
    """One client: requests back to back until the window closes."""
    clock = time.perf_counter_ns
    while not window.closed:
        started = clock()
        try:
            await call(rng.randrange(keys))
        except (grpc.aio.AioRpcError, EtcdError) as error:
            if window.opened_ns and not window.closed:
                window.errors[_status_name(error)] += 1
            await asyncio.sleep(ERROR_PAUSE)
            continue
        if 0 < window.opened_ns <= started and not window.closed:
            window.latencies_ns.append(clock() - started)


def _status_name(error: grpc.aio.AioRpcError | EtcdError) -> str:
    code = error.code if isinstance(error, EtcdError) else error.code()
    return code.name


@contextlib.asynccontextmanager
async def _connections(workload: Workload) -> AsyncIterator[list[Call]]:
    """``workload.channels`` connections to the server, each as a `Call`."""
    keys = [key_name(index) for index in range(workload.keys)]
    value = value_bytes(workload.value_size, workload.seed)
    connect = _kv_client_call if workload.client == "kv" else _stub_call
    async with contextlib.AsyncExitStack() as stack:
        calls = [
            await stack.enter_async_context(connect(workload, keys, value))
            for _ in range(workload.channels)
        ]
        yield calls


@contextlib.asynccontextmanager
async def _kv_client_call(
    workload: Workload, keys: list[bytes], value: bytes
) -> AsyncIterator[Call]:
    """A `Call` through the project's `KVClient` (its own channel; gRPC pools the connection)."""
    serializable = workload.serializable
    async with KVClient(workload.endpoint, timeout=REQUEST_TIMEOUT) as client:
        if workload.operation == "put":

            async def put(index: int) -> object:
                return await client.put(keys[index], value)

            yield put
        else:

            async def get(index: int) -> object:
                return await client.range(keys[index], serializable=serializable)

            yield get


@contextlib.asynccontextmanager
async def _stub_call(workload: Workload, keys: list[bytes], value: bytes) -> AsyncIterator[Call]:
    """A `Call` through the generated stub on a channel of its own, requests built up front."""
    # Channels with equal arguments share one connection through gRPC's global subchannel
    # pool; a local pool gives each channel its own TCP connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(workload.endpoint, options=options) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)
        if workload.operation == "put":
            puts = [rpc_pb2.PutRequest(key=key, value=value) for key in keys]

            async def put(index: int) -> object:
                return await stub.Put(puts[index], timeout=REQUEST_TIMEOUT)

            yield put
        else:
            ranges = [
                rpc_pb2.RangeRequest(key=key, serializable=workload.serializable) for key in keys
            ]

            async def get(index: int) -> object:
                return await stub.Range(ranges[index], timeout=REQUEST_TIMEOUT)

            yield get
