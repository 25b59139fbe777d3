"""``kv serve`` that reports its own counters on SIGUSR1 (for the benchmarks only).

kv keeps no metrics a benchmark could read, and ``kv serve`` shows none. Rather than change
the server for a benchmark, the benchmarks start kv through this module: it wraps a few of
kv's functions with counters, then runs ``kv serve`` unchanged. On SIGUSR1 it prints one line
to stderr (the server's log), ``kv-bench-counters {...}``, and `read` sends the signal and
reads that line back. Reading costs the server nothing between two signals, unlike strace,
which stops it at every fsync (`benchmarks.fsyncs`); the wrappers cost a few clock readings
per call. etcd's equivalents are on its ``/metrics`` page.

What the line holds:

* ``fsyncs``: the write-ahead log's fsyncs (`kv.wal.WAL.sync` calls): the Raft loop's persist
  step makes them, one per Ready that must be synced, whatever number of writes it carries
  (that is kv's group commit).
* ``stages``: for each step of the Raft loop (chapters 4 and 5), ``[calls, wall seconds, CPU
  seconds of the calling thread]``; CPU is not measured for coroutines (they give the thread
  away while they wait), only their wall time. See `STAGES`.
* ``counts``: entries persisted, entries applied, messages handed to the peer transport.
* ``loop_cpu``: CPU seconds of the main thread, which runs the event loop (so every stage but
  the fsync); ``process_cpu``: of every thread.

::

    python -c "from benchmarks.kv_counters import main; raise SystemExit(main())" serve ...
"""

import functools
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

#: What a counters line starts with in the server's log.
PREFIX = "kv-bench-counters "
#: Seconds `read` waits for the line after the signal.
READ_TIMEOUT = 5.0

#: The wrapped functions: stage name -> (module, class or None, function, is a coroutine).
#: ``server_put`` is a client's put inside the server, from the service handing it over to the
#: answer (a wait), and includes ``quota`` (the space check before it is proposed);
#: ``propose`` steps the writes queued since the last turn into the core, as one proposal
#: (`Proposals.step_queued`, which runs ``step``). ``pace`` is the wait before a busy
#: leader's Ready turn (`kv.server.replica.pacing`).
#: Nested stages: ``persist`` includes ``wal_save`` and ``wal_sync`` (the fsync, awaited in a
#: worker thread); ``receive`` (a peer's message) includes ``decode`` (protobuf
#: to kv.raft's message), ``is_removed`` (is the sender a removed member?) and ``step``;
#: ``send`` only queues messages and ``encode`` turns them into protobuf on their way out;
#: writing them is never waited for (`kv.server.peers.outbound`'s queue never blocks), so
#: there is no write wait to time. Every stage must be a function of kv's that a leader
#: serving puts runs (tests/test_kv_counters.py): one kv no longer calls would only ever
#: report nothing.
STAGES: dict[str, tuple[str, str | None, str, bool]] = {
    "server_put": ("kv.server.requests.server", "Server", "put", True),
    "quota": ("kv.server.requests.quota", "BackendQuota", "available", False),
    "propose": ("kv.server.replica.clients.proposals", "Proposals", "step_queued", False),
    "tick": ("kv.raft", "RawNode", "tick", False),
    "ready": ("kv.raft", "RawNode", "ready", False),
    "pace": ("kv.server.replica.pacing", "TurnPacing", "next_turn", True),
    "persist": ("kv.server.disk.raft_disk", "RaftDisk", "persist", True),
    "wal_save": ("kv.wal", "WAL", "save", False),
    "wal_sync": ("kv.wal", "WAL", "sync", False),
    "send": ("kv.server.peers.transport", "PeerTransport", "send", False),
    "apply": ("kv.server.replica.replica", "Replica", "_apply", False),
    "advance": ("kv.raft", "RawNode", "advance", False),
    "receive": ("kv.server.peers.transport", "PeerTransport", "receive", False),
    "decode": ("kv.server.raft_wire", None, "message_from_pb", False),
    "is_removed": ("kv.server.applied.members", "MemberStore", "is_removed", False),
    "step": ("kv.raft", "RawNode", "step", False),
    "encode": ("kv.server.wire_bytes", None, "message_bytes", False),
}

#: Stage name -> [calls, wall seconds, thread CPU seconds].
_stages: dict[str, list[float]] = {}
_counts: dict[str, int] = {"entries_persisted": 0, "entries_applied": 0, "messages_sent": 0}


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    cell = _stages.setdefault(name, [0, 0.0, 0.0])
    clock, cpu = time.perf_counter, time.thread_time

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started, cpu_started = clock(), cpu()
        try:
            return function(*args, **kwargs)
        finally:
            cell[0] += 1
            cell[1] += clock() - started
            cell[2] += cpu() - cpu_started

    return timed


def _timed_coroutine(name: str, function: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    cell = _stages.setdefault(name, [0, 0.0, 0.0])
    clock = time.perf_counter

    @functools.wraps(function)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return await function(*args, **kwargs)
        finally:
            cell[0] += 1
            cell[1] += clock() - started

    return timed


def _install() -> None:
    """Wrap every function of `STAGES` that this kv has (a missing one is left out)."""
    import importlib

    for name, (module_name, class_name, attribute, is_coroutine) in STAGES.items():
        try:
            owner: Any = importlib.import_module(module_name)
            if class_name is not None:
                owner = getattr(owner, class_name)
            function = getattr(owner, attribute)
        except (ImportError, AttributeError):
            continue
        wrap = _timed_coroutine if is_coroutine else _timed
        setattr(owner, attribute, wrap(name, function))
    _count_items()


def _count_items() -> None:
    """Count what flows through the Raft loop: entries persisted and applied, messages sent."""
    try:
        from kv.server.disk.raft_disk import RaftDisk
        from kv.server.peers.transport import PeerTransport
        from kv.server.replica.replica import Replica
    except ImportError:
        return
    persist, send, apply = RaftDisk.persist, PeerTransport.send, Replica._apply

    async def counted_persist(self: Any, ready: Any) -> None:
        _counts["entries_persisted"] += len(ready.entries)
        await persist(self, ready)

    def counted_send(self: Any, messages: Any) -> None:
        _counts["messages_sent"] += len(messages)
        send(self, messages)

    def counted_apply(self: Any, ready: Any) -> None:
        _counts["entries_applied"] += len(ready.committed_entries)
        apply(self, ready)

    RaftDisk.persist = counted_persist  # type: ignore[method-assign]
    PeerTransport.send = counted_send  # type: ignore[method-assign]
    Replica._apply = counted_apply  # type: ignore[method-assign]


def snapshot() -> dict[str, Any]:
    """Every counter now (what the SIGUSR1 line holds); call it on the event loop's thread."""
    wal_sync = _stages.get("wal_sync", [0, 0.0, 0.0])
    return {
        "fsyncs": int(wal_sync[0]),
        "stages": {name: list(cell) for name, cell in _stages.items()},
        "counts": dict(_counts),
        "loop_cpu": time.thread_time(),
        "process_cpu": time.process_time(),
    }


def _report(signum: int, frame: FrameType | None) -> None:
    """The SIGUSR1 handler (Python runs it on the main thread, between two bytecodes)."""
    print(PREFIX + json.dumps(snapshot()), file=sys.stderr, flush=True)


def read(log_path: Path, pid: int, timeout: float = READ_TIMEOUT) -> dict[str, Any]:
    """Signal the kv server ``pid`` (run through this module) and return the counters line it
    writes to ``log_path``, parsed."""
    seen = len(_lines(log_path))
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = _lines(log_path)
        if len(lines) > seen:
            found: dict[str, Any] = json.loads(lines[-1])
            return found
        time.sleep(0.002)
    raise LookupError(f"kv printed no counters within {timeout:g}s of SIGUSR1")


def _lines(log_path: Path) -> list[str]:
    text = log_path.read_text(errors="replace")
    return [line[len(PREFIX) :] for line in text.splitlines() if line.startswith(PREFIX)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kv`` command (``serve ...``) with the counters reported on SIGUSR1."""
    from kv.cli import main as kv_main

    _install()
    signal.signal(signal.SIGUSR1, _report)
    return kv_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
