"""``python -m benchmarks.run``: run kv and etcd one after the other, report kv/etcd ratios.

For each server in ``--servers``: start it (same flags for both), run the put phase, make sure
every key exists, run the range phase, stop it. Then write the table to ``--output`` (and the
raw numbers beside it as JSON) and print it. Progress goes to stderr.
"""

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from benchmarks import procstat, report
from benchmarks.load import (
    CLIENT_KINDS,
    OPERATIONS,
    ClientKind,
    LoadError,
    Workload,
    fill_key_space,
    run_phase,
)
from benchmarks.servers import (
    SERVER_KINDS,
    ServerError,
    ServerKind,
    ServerOptions,
    filesystem_type,
    running_server,
    server_version,
)

DEFAULT_OUTPUT = Path("benchmarks/results/chapter1.md")
#: tmpfs, so that etcd's fsyncs do not measure the disk; elsewhere the system's temp dir.
DEFAULT_DATA_ROOT = Path("/dev/shm")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see ``python -m benchmarks.run --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark kv beside the real etcd 3.4 in one run and report ratios.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--servers", type=_servers, default=list(SERVER_KINDS), help="comma-separated: kv,etcd"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--clients", type=int, default=64, help="requests in flight in all")
    parser.add_argument("--processes", type=int, default=2, help="load worker processes")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels per process")
    parser.add_argument("--value-size", type=int, default=256, help="bytes per value")
    parser.add_argument("--keys", type=int, default=10_000, help="size of the key space")
    parser.add_argument(
        "--client",
        choices=CLIENT_KINDS,
        default="kv",
        help="kv: the project's KVClient; stub: bare generated stubs, requests built up front",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT if DEFAULT_DATA_ROOT.is_dir() else None,
        help="where the servers' temporary data directories go (default: the system's temp dir "
        "if there is no /dev/shm)",
    )
    parser.add_argument(
        "--etcd-unsafe-no-fsync",
        action="store_true",
        help="run etcd with --unsafe-no-fsync (hidden from etcd --help; in 3.4 since 3.4.10)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown table")
    parser.add_argument(
        "--note", action="append", default=[], help="a line to add to the caption (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of keys, values and choices")
    args = parser.parse_args(argv)
    if min(args.clients, args.processes, args.channels, args.keys) < 1:
        parser.error("--clients, --processes, --channels and --keys must be at least 1")
    if args.clients < args.processes:
        parser.error("--clients must be at least --processes")
    if args.data_root is None:
        args.data_root = Path(tempfile.gettempdir())
    return args


def _servers(text: str) -> list[ServerKind]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVER_KINDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SERVER_KINDS)}")
    return [cast(ServerKind, name) for name in dict.fromkeys(names)]


def benchmark(args: argparse.Namespace) -> list[report.Summary]:
    """Run every phase on every server, one server at a time; the summaries in run order."""
    options = ServerOptions(
        data_root=args.data_root, etcd_unsafe_no_fsync=args.etcd_unsafe_no_fsync
    )
    cores = procstat.cores()
    summaries = []
    for kind in args.servers:
        with running_server(kind, options) as server:
            _progress(f"{kind}: started, pid {server.pid}, {server.endpoint}")
            for operation in OPERATIONS:
                workload = Workload(
                    operation=operation,
                    endpoint=server.endpoint,
                    keys=args.keys,
                    value_size=args.value_size,
                    clients=args.clients,
                    processes=args.processes,
                    channels=args.channels,
                    warmup=args.warmup,
                    duration=args.duration,
                    client=cast(ClientKind, args.client),
                    seed=args.seed,
                )
                if operation == "range":
                    missing = fill_key_space(server.endpoint, args.keys, args.value_size, args.seed)
                    _progress(f"{kind}: put the {missing} keys the put phase had not written")
                summary = report.summarize(kind, run_phase(workload, server.pid), cores)
                _progress(
                    f"{kind} {operation}: {summary.requests_per_second:,.0f} req/s, "
                    f"p50 {summary.p50_ms:.3g} ms, p99 {summary.p99_ms:.3g} ms, "
                    f"CPU client {summary.client_cpu_share:.0%} server "
                    f"{summary.server_cpu_share:.0%} other {summary.other_cpu_share:.0%}, "
                    f"CPU per request client {summary.client_cpu_us_per_request:.0f} us "
                    f"server {summary.server_cpu_us_per_request:.0f} us, "
                    f"errors {sum(summary.errors.values())}"
                )
                summaries.append(summary)
    return summaries


def parameters(args: argparse.Namespace) -> dict[str, object]:
    """The run's parameters, as the caption and the JSON record them."""
    return {
        "servers": args.servers,
        "duration": args.duration,
        "warmup": args.warmup,
        "clients": args.clients,
        "processes": args.processes,
        "channels": args.channels,
        "value_size": args.value_size,
        "keys": args.keys,
        "client": args.client,
        "data_root": str(args.data_root),
        "data_root_is_tmpfs": filesystem_type(args.data_root) == "tmpfs",
        "etcd_unsafe_no_fsync": args.etcd_unsafe_no_fsync,
        "seed": args.seed,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if a server or a worker failed."""
    args = parse_args(argv)
    try:
        summaries = benchmark(args)
    except (ServerError, LoadError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    env = report.environment({kind: server_version(kind) for kind in args.servers})
    text = report.write(args.output, summaries, env, parameters(args), args.note)
    _progress(f"wrote {args.output} and {args.output.with_suffix('.json')}")
    print(text, end="")
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
