"""``python -m benchmarks.chapter2``: the durable single node, kv beside etcd, on a real disk.

Chapter 2 made kv durable: a write is in the fsynced log before it is answered. This run
measures what that costs, with both servers' data directories on the disk (``--data-root``,
by default the system's temp dir; the caption says which file system and device it is on,
and how fast a bare fdatasync is there). Each server in ``--servers`` runs alone; steps 1
and 2 run for every server first, close together in time so that they meet the same
conditions, then step 3 for every server:

1. **Throughput.** Start it, run random puts with ``--clients`` requests in flight, then
   puts with one in flight (the latency of a single durable write: no batching possible),
   then single-key linearizable gets. Stop it. Over the first phase's window, read the
   server's own count of log fsyncs (kv through `benchmarks.kv_counters`, etcd from its
   ``/metrics``): fsyncs per acknowledged write, group commit at work.
2. **Sync calls by file.** Start a fresh one under strace (`benchmarks.fsyncs`), run the
   same put load, and count every sync call in the measured window by the file it synced
   (log, backend, other). Skipped, with a note, where strace cannot run (``--no-strace``).
3. **Restart.** Load ``--restart-keys`` keys (16-byte keys, 100-byte values) through the API,
   stop it cleanly, start it again on its data and time the launch to the first answer; read
   its memory then and after counting every key (`benchmarks.restart`). ``--restart-keys 0``
   skips it.

Then it writes the tables (`benchmarks.chapter2_report`) to ``--output``
(``benchmarks/results/chapter2.md``) and the raw numbers beside it as JSON, and prints them.
The defaults take about 12 minutes on 2 cores, most of it kv loading a million keys;
``--quick`` (3 s phases, 100,000 keys) takes about 2::

    python -m benchmarks.chapter2
    python -m benchmarks.chapter2 --quick --output /tmp/ch2.md
"""

import argparse
import contextlib
import functools
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from benchmarks import fsyncs, procstat, report, restart
from benchmarks.arguments import (
    add_load_arguments,
    add_report_arguments,
    add_servers_argument,
    apply_quick,
    check_load_arguments,
    load_parameters,
    load_workload,
)
from benchmarks.chapter2_report import Results, markdown
from benchmarks.load import LoadError, Operation, fill_key_space, run_phase
from benchmarks.report import Summary
from benchmarks.servers import (
    Server,
    ServerError,
    ServerKind,
    ServerOptions,
    filesystem,
    running_server,
    server_version,
)

DEFAULT_OUTPUT = Path("benchmarks/results/chapter2.md")
DEFAULT_RESTART_KEYS = 1_000_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see ``python -m benchmarks.chapter2 --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chapter2",
        description="Chapter 2's figures: durable puts, fsyncs per write and restart with many "
        "keys, kv beside the real etcd 3.4 in one run, on a real disk.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_servers_argument(parser)
    add_load_arguments(parser)
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the servers' data directories go: must be on the disk to be measured "
        "(not tmpfs, where fsync returns at once)",
    )
    parser.add_argument(
        "--strace",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also count sync calls by file under strace (a separate put phase)",
    )
    parser.add_argument(
        "--restart-keys",
        type=int,
        default=DEFAULT_RESTART_KEYS,
        help="keys loaded before the restart is timed (0: no restart measurement)",
    )
    parser.add_argument(
        "--restart-clients", type=int, default=128, help="requests in flight while loading"
    )
    add_report_arguments(
        parser,
        DEFAULT_OUTPUT,
        quick_help="a short run: 3 s phases after 1 s warm-ups, 100,000 restart keys",
    )
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)
    apply_quick(args, argv, {"duration": 3.0, "warmup": 1.0, "restart_keys": 100_000})
    check_load_arguments(parser, args)
    if args.restart_clients < 1:
        parser.error("--restart-clients must be at least 1")
    if args.restart_keys < 0:
        parser.error("--restart-keys must be 0 or more")
    return args


def benchmark(args: argparse.Namespace) -> Results:
    """Run every measurement on every server, one server at a time."""
    options = ServerOptions(data_root=args.data_root, kv_command=fsyncs.KV_COUNTERS_COMMAND)
    cores = procstat.cores()
    load_before = os.getloadavg()[0]
    disk = fsyncs.probe_disk(args.data_root)
    _progress(f"disk under {args.data_root}: fdatasync p50 {disk.p50_ms:.3g} ms")
    fsync_note = fsyncs.unavailable() if args.strace else "not asked for (--no-strace)"
    if fsync_note:
        _progress(f"sync calls not counted: {fsync_note}")
    results = Results([], [], [], fsync_note, [], disk, (load_before, math.nan))
    # The short phases of both servers first, close together in time, so that they meet the
    # same conditions; the long restart measurements after them.
    for kind in args.servers:
        summaries, own = _throughput(kind, args, options, cores)
        results.summaries += summaries
        if own is not None:
            results.own_counts.append(own)
        if fsync_note is None:
            results.fsync_counts.append(_count_fsyncs(kind, args, options, cores))
    for kind in args.servers:
        if args.restart_keys:
            results.restarts.append(
                restart.measure(
                    kind,
                    options,
                    args.restart_keys,
                    args.processes,
                    args.restart_clients,
                    _progress,
                )
            )
    results.load_average = (load_before, os.getloadavg()[0])
    return results


def _throughput(
    kind: ServerKind, args: argparse.Namespace, options: ServerOptions, cores: int
) -> tuple[list[Summary], fsyncs.OwnCount | None]:
    """The throughput phases on one server; and its own count of log fsyncs in the first."""
    summaries = []
    own: fsyncs.OwnCount | None = None
    with running_server(kind, options) as server:
        _progress(f"{kind}: started, pid {server.pid}, {server.endpoint}")
        phases: list[tuple[Operation, bool]] = [("put", False), ("put", True), ("range", False)]
        for operation, alone in phases:
            workload = load_workload(args, operation, server.endpoint, alone=alone)
            if operation == "range":
                missing = fill_key_space(server.endpoint, args.keys, args.value_size, args.seed)
                _progress(f"{kind}: put the {missing} keys the put phases had not written")
            label = f"{operation}, {workload.clients} in flight"
            readings: list[int] = []
            counting = operation == "put" and not alone
            read = functools.partial(_read_own_counter, server, readings)
            phase = run_phase(workload, server.pid, read if counting else None)
            summary = report.summarize(kind, phase, cores, label)
            _progress(
                f"{kind} {label}: {summary.requests_per_second:,.0f} req/s, "
                f"p50 {summary.p50_ms:.3g} ms, p99 {summary.p99_ms:.3g} ms, CPU client "
                f"{summary.client_cpu_share:.0%} server {summary.server_cpu_share:.0%} other "
                f"{summary.other_cpu_share:.0%}, errors {sum(summary.errors.values())}"
            )
            if counting:
                own = fsyncs.OwnCount(
                    kind, summary.requests, readings[1] - readings[0], fsyncs.own_count_source(kind)
                )
                _progress(
                    f"{kind}: {own.wal_fsyncs:,} log fsyncs by its own count, "
                    f"{own.writes_per_fsync:.1f} writes per fsync"
                )
            summaries.append(summary)
    return summaries, own


def _read_own_counter(server: Server, readings: list[int]) -> None:
    readings.append(fsyncs.read_own_counter(server))


def _count_fsyncs(
    kind: ServerKind, args: argparse.Namespace, options: ServerOptions, cores: int
) -> fsyncs.FsyncCount:
    # The trace goes to memory if it can, so that writing it does not touch the measured disk.
    shm = Path("/dev/shm")
    fd, name = tempfile.mkstemp(prefix=f"bench-strace-{kind}-", dir=shm if shm.is_dir() else None)
    os.close(fd)
    trace = Path(name)
    try:
        with running_server(kind, options, prefix=fsyncs.prefix(trace)) as server:
            _progress(f"{kind}: started under strace, pid {server.pid}")
            phase = run_phase(load_workload(args, "put", server.endpoint), server.pid)
        summary = report.summarize(kind, phase, cores)
        with open(trace) as lines:
            traced = fsyncs.calls(lines)
    finally:
        trace.unlink(missing_ok=True)
    counted = fsyncs.count(
        kind,
        traced,
        (phase.opened_at, phase.closed_at),
        summary.requests,
        summary.requests_per_second,
        (summary.p50_ms, summary.p99_ms),
    )
    _progress(
        f"{kind} under strace: {counted.requests_per_second:,.0f} req/s, "
        f"{counted.per_write():.3f} sync calls per write ({counted.per_write('wal'):.3f} on the "
        f"log, {counted.writes_per_wal_sync:.1f} writes per log sync), {counted.calls}"
    )
    return counted


# --- the report ----------------------------------------------------------------------------


def parameters(args: argparse.Namespace) -> dict[str, object]:
    """The run's parameters, as the caption and the JSON record them."""
    device, fs_type = filesystem(args.data_root)
    return load_parameters(args) | {
        "data_root": str(args.data_root),
        "data_root_device": device,
        "data_root_fs": fs_type,
        "strace": args.strace,
        "restart_keys": args.restart_keys,
        "restart_clients": args.restart_clients,
        "restart_key_size": restart.KEY_SIZE,
        "restart_value_size": restart.VALUE_SIZE,
    }


def write(
    output: Path,
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, object],
    notes: Sequence[str] = (),
) -> str:
    """Write the markdown to ``output`` and the raw numbers beside it (``.json``)."""

    text = markdown(results, env, parameters, notes)
    raw = report.record(env, parameters, notes) | {
        "disk": asdict(results.disk),
        "load_average": list(results.load_average),
        "results": [asdict(summary) for summary in results.summaries],
        "own_counts": [
            {**asdict(count), "per_write": count.per_write} for count in results.own_counts
        ],
        "fsyncs": [
            {
                **asdict(count),
                "per_write": count.per_write(),
                "wal_per_write": count.per_write("wal"),
                "writes_per_wal_sync": count.writes_per_wal_sync,
            }
            for count in results.fsync_counts
        ],
        "fsyncs_note": results.fsync_note,
        "restart": [
            {**asdict(result), "load_rate": result.load_rate} for result in results.restarts
        ],
    }
    report.save(output, text, raw)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if a server or a worker failed."""
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        results = benchmark(args)
    except (ServerError, LoadError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    env = report.environment({kind: server_version(kind) for kind in args.servers})
    text = write(args.output, results, env, parameters(args), args.note)
    _progress(
        f"wrote {args.output} and {args.output.with_suffix('.json')} "
        f"({time.perf_counter() - started:.0f} s in all)"
    )
    print(text, end="")
    return 0


def _progress(message: str) -> None:
    with contextlib.suppress(OSError):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
