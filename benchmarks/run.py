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

from benchmarks import procstat, report
from benchmarks.arguments import (
    add_load_arguments,
    add_report_arguments,
    add_servers_argument,
    check_load_arguments,
    load_parameters,
    load_workload,
)
from benchmarks.load import OPERATIONS, LoadError, fill_key_space, run_phase
from benchmarks.servers import (
    ServerError,
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
    add_servers_argument(parser)
    add_load_arguments(parser)
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
    add_report_arguments(parser, DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)
    if args.data_root is None:
        args.data_root = Path(tempfile.gettempdir())
    return args


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
                workload = load_workload(args, operation, server.endpoint)
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
    return load_parameters(args) | {
        "data_root": str(args.data_root),
        "data_root_is_tmpfs": filesystem_type(args.data_root) == "tmpfs",
        "etcd_unsafe_no_fsync": args.etcd_unsafe_no_fsync,
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
