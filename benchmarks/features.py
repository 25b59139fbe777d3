"""``python -m benchmarks.features``: watches, leases and transactions, kv beside etcd 3.4.

Chapters 6-8 add what most people use etcd for. This run measures three of them on each
server in turn, with the same flags and the same load (`benchmarks.load`, worker processes
separate from the server), on one member and on a three-member cluster (``--members``), the
load always sent to the leader:

1. **Watch fan-out.** Random puts under ``bench/`` (``--clients`` in flight from
   ``--processes`` processes), first alone, then while ``--watchers`` watchers of the prefix
   ``bench/``, spread over ``--watch-streams`` Watch streams in each of ``--watch-processes``
   processes, receive the events: the puts per second without and with the watchers, and
   the events per second delivered to all watchers together.
2. **Lease keep-alives.** ``--leases`` leases, granted before the window, kept alive over
   LeaseKeepAlive streams (one per channel, ``--clients`` keep-alives in flight in all):
   keep-alives answered per second.
3. **Txn compare-and-swap.** ``Txn(mod_revision(key) == the last one seen, success: put,
   failure: range)`` on ``--hot-keys`` keys that every client writes, then on ``--keys``
   keys: Txns per second, and the share whose compare held (`benchmarks.calls`).

Then it writes the tables to ``--output`` and the raw numbers beside it as JSON, and prints
them. The defaults take about six minutes on 2 cores; ``--quick`` (3 s windows after 1 s
warm-ups) under four::

    python -m benchmarks.features
    python -m benchmarks.features --quick --output /tmp/features.md
"""

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import procstat, report
from benchmarks.arguments import (
    add_load_arguments,
    add_report_arguments,
    add_servers_argument,
    add_sources_argument,
    apply_quick,
    check_load_arguments,
    load_parameters,
    load_workload,
)
from benchmarks.clusters import running_cluster, status
from benchmarks.load import LoadError, Operation, Workload, run_phase, run_phases
from benchmarks.report import Summary
from benchmarks.run import DEFAULT_DATA_ROOT
from benchmarks.servers import (
    ServerError,
    ServerKind,
    ServerOptions,
    filesystem_type,
    kv_sources,
    running_server,
    server_version,
)

DEFAULT_OUTPUT = Path("benchmarks/results/features.md")


@dataclass(slots=True)
class Run:
    """One server's (or cluster's) phases, by name: what a table's column is made of."""

    phases: dict[str, Summary] = field(default_factory=dict)
    written: int = 0
    """Revisions the puts made in the window the watchers watched (the header revision at
    the window's close less at its open): each one is an event for every watcher."""


#: Every server's run, by cluster size.
Results = dict[int, dict[str, Run]]


def members_list(text: str) -> list[int]:
    """``--members``: comma-separated cluster sizes, each 1 or at least 3."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(size < 1 or size == 2 for size in sizes):
        raise argparse.ArgumentTypeError("sizes of 1 or at least 3, comma-separated: 1,3")
    return list(dict.fromkeys(sizes))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see ``python -m benchmarks.features --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.features",
        description="Watch fan-out, lease keep-alives and compare-and-swap Txns, kv beside "
        "the real etcd 3.4 in one run, on one member and on three.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_servers_argument(parser)
    add_load_arguments(parser)
    parser.add_argument("--members", type=members_list, default=[1, 3], help="cluster sizes")
    parser.add_argument("--watchers", type=int, default=1000, help="watchers of the prefix")
    parser.add_argument("--watch-processes", type=int, default=2, help="their processes")
    parser.add_argument("--watch-streams", type=int, default=4, help="Watch streams per process")
    parser.add_argument("--leases", type=int, default=1000, help="leases kept alive")
    parser.add_argument("--hot-keys", type=int, default=4, help="keys of the hot-key Txns")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT if DEFAULT_DATA_ROOT.is_dir() else Path(tempfile.gettempdir()),
        help="where the servers' data directories go",
    )
    add_sources_argument(parser)
    add_report_arguments(
        parser, DEFAULT_OUTPUT, quick_help="a short run: 3 s windows after 1 s warm-ups"
    )
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)
    apply_quick(args, argv, {"duration": 3.0, "warmup": 1.0})
    check_load_arguments(parser, args)
    if min(args.leases, args.hot_keys, args.watch_processes, args.watch_streams) < 1:
        parser.error("--leases, --hot-keys, --watch-processes and --watch-streams: at least 1")
    if args.hot_keys < args.processes:
        parser.error("--hot-keys must be at least --processes (each owns its share)")
    if args.watchers < args.watch_processes * args.watch_streams:
        parser.error("--watchers must be at least one per stream")
    return args


# --- the run -------------------------------------------------------------------------------


def workloads(args: argparse.Namespace, endpoint: str) -> dict[str, Workload]:
    """Each phase's load on ``endpoint``, by the phase's name, in the order they run."""
    puts = load_workload(args, "put", endpoint)

    def feature(operation: Operation, keys: int) -> Workload:
        return replace(puts, operation=operation, keys=keys, client="stub")

    return {
        "puts alone": puts,
        "puts with watchers": puts,
        "watch": replace(
            feature("watch", args.keys),
            clients=args.watchers,
            processes=args.watch_processes,
            channels=args.watch_streams,
        ),
        "keepalive": feature("keepalive", args.leases),
        "txn, hot keys": feature("txn", args.hot_keys),
        "txn, many keys": feature("txn", args.keys),
    }


def measure(args: argparse.Namespace, kind: ServerKind, endpoint: str, pids: list[int]) -> Run:
    """Every phase against one server (or cluster) reached at ``endpoint``."""
    loads = workloads(args, endpoint)
    cores = procstat.cores()
    run = Run()
    for name, workload in loads.items():
        events = ""
        if name == "watch":
            continue  # runs with "puts with watchers"
        if name == "puts with watchers":
            revisions: list[int] = []

            def read(revisions: list[int] = revisions) -> None:
                revisions.append(status(endpoint).header.revision)

            put, watch = run_phases([workload, loads["watch"]], pids, read)
            run.written = revisions[-1] - revisions[0]
            run.phases["watch"] = report.summarize(kind, watch, cores, "watch")
            events = f", events {run.phases['watch'].counted_per_second:,.0f}/s"
        else:
            put = run_phase(workload, pids)
        summary = run.phases[name] = report.summarize(kind, put, cores, name)
        report.progress(
            f"{kind} {name}: {summary.requests_per_second:,.0f}/s, p99 "
            f"{summary.p99_ms:.3g} ms, CPU client {summary.client_cpu_share:.0%} server "
            f"{summary.server_cpu_share:.0%} other {summary.other_cpu_share:.0%}, errors "
            f"{sum(summary.errors.values())}{events}"
        )
    return run


@contextlib.contextmanager
def serving(
    kind: ServerKind, members: int, options: ServerOptions
) -> Iterator[tuple[str, list[int]]]:
    """A server of ``kind`` (``members`` 1) or a cluster: its leader's endpoint and every
    member's pid, for the ``with`` block."""
    if members == 1:
        with running_server(kind, options) as server:
            yield server.endpoint, [server.pid]
    else:
        with running_cluster(kind, options, members) as cluster:
            yield cluster.endpoints[cluster.leader()], cluster.pids


def benchmark(args: argparse.Namespace, sources: Path | None) -> Results:
    """Every phase on every server, for each cluster size; kv runs from ``sources``."""
    options = ServerOptions(data_root=args.data_root, start_timeout=60.0, cwd=sources)
    results: Results = {}
    for members in args.members:
        for kind in args.servers:
            with serving(kind, members, options) as (endpoint, pids):
                report.progress(f"{kind}: {members} member(s) up, pids {pids}, {endpoint}")
                results.setdefault(members, {})[kind] = measure(args, kind, endpoint, pids)
    return results


# --- the report ----------------------------------------------------------------------------


def _latency(phase: str) -> report.Row[Run]:
    def cell(p: Run) -> str:
        return f"{report.figure(p.phases[phase].p50_ms)} / {report.figure(p.phases[phase].p99_ms)}"

    return ("... p50 / p99 ms", cell)


def _cpu(phase: str) -> report.Row[Run]:
    def cell(p: Run) -> str:
        return f"{p.phases[phase].client_cpu_share:.0%} / {p.phases[phase].server_cpu_share:.0%}"

    return ("... CPU client / server", cell)


def rows(parameters: Mapping[str, Any]) -> list[report.Row[Run]]:
    """The table's rows, a section per benchmark."""
    p = parameters
    fan_out = (
        f"**Watch fan-out**: {p['watchers']:,} watchers on one prefix, {p['watch_streams']} "
        f"streams in each of {p['watch_processes']} processes"
    )
    txn: list[report.Row[Run]] = []
    for phase, keys in (("txn, hot keys", p["hot_keys"]), ("txn, many keys", p["keys"])):
        txn += [
            (f"**Txn compare-and-swap on {keys:,} keys**: Txns/s", _rate(phase)),
            ("... swaps that succeeded /s", _field(phase, "counted_per_second")),
            ("... success rate", _success(phase)),
            _latency(phase),
            _cpu(phase),
        ]
    return [
        (fan_out, lambda _: ""),
        ("puts/s without watchers", _rate("puts alone")),
        ("puts/s with the watchers", _rate("puts with watchers")),
        (
            "**events/s delivered, all watchers together**",
            lambda r: r.phases["watch"].counted_per_second,
        ),
        (
            "... events delivered per event written in the window (1: keeping up)",
            _delivered(p["watchers"]),
        ),
        ("put p50 / p99 ms without watchers", _latency("puts alone")[1]),
        ("... with the watchers", _latency("puts with watchers")[1]),
        (
            "... CPU writers / watchers / server",
            _fan_out_cpu,
        ),
        (f"**Lease keep-alives of {p['leases']:,} leases**: answered/s", _rate("keepalive")),
        _latency("keepalive"),
        _cpu("keepalive"),
        *txn,
    ]


def _fan_out_cpu(run: Run) -> str:
    writers, watchers = run.phases["puts with watchers"], run.phases["watch"]
    shares = (writers.client_cpu_share, watchers.client_cpu_share, watchers.server_cpu_share)
    return " / ".join(f"{share:.0%}" for share in shares)


def _delivered(watchers: int) -> Callable[[Run], str]:
    def cell(run: Run) -> str:
        events = run.written * watchers
        return report.figure(run.phases["watch"].counted / events) if events else "-"

    return cell


def _rate(phase: str) -> Callable[[Run], float]:
    return _field(phase, "requests_per_second")


def _field(phase: str, name: str) -> Callable[[Run], float]:
    return lambda r: float(getattr(r.phases[phase], name))


def _success(phase: str) -> Callable[[Run], str]:
    def cell(r: Run) -> str:
        summary = r.phases[phase]
        return f"{summary.counted / summary.requests:.1%}" if summary.requests else "-"

    return cell


def caption(
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, Any],
    notes: Sequence[str],
) -> list[str]:
    """The caption's lines: when, where, how, and what to keep in mind when reading."""
    p = parameters
    versions = ", ".join(env.versions.values())
    kv = f"kv as committed at {p['kv_commit']}" if "kv_commit" in p else "kv " + p["kv_sources"]
    summaries = [
        s
        for by_server in results.values()
        for run in by_server.values()
        for s in run.phases.values()
    ]
    lines = [
        f"Measured {env.date} on {env.cores} cores ({env.cpu_model}), {env.python}, grpcio "
        f"{env.grpcio}; {versions}; {kv}. One server (or cluster) at a time, same flags, "
        f"same load, sent to the leader; a cluster's members share the machine's cores. "
        f"Data directories under {p['data_root']}"
        + (" (tmpfs: fsync returns at once)." if p["data_root_is_tmpfs"] else "."),
        f"Load: worker processes apart from the servers, each measured for {p['duration']:g} s "
        f"after a {p['warmup']:g} s warm-up. Puts: {p['clients']} in flight from "
        f"{p['processes']} processes, random keys of {p['keys']:,} under `bench/`, "
        f"{p['value_size']}-byte values. Keep-alives: {p['clients']} in flight on "
        f"{p['channels']} LeaseKeepAlive streams per process. Txns: {p['clients']} in "
        "flight; the compare is on the key's mod_revision, each load process owning its share "
        "of the keys and remembering the last mod_revision it saw of each, so a try fails "
        "when another client of the process swapped the key since. Requests through the bare "
        "generated stubs.",
        "kv/etcd is kv's figure divided by etcd's in the same run. CPU is a share of the "
        f"whole machine (100% = all {env.cores} cores): client is the load's processes "
        "(writers and watchers apart in the watch rows), server all members together. A "
        "client near its ceiling (each process tops out near "
        f"{1 / env.cores:.0%}) bounds what is measured, most of all the events a Python "
        "watcher process can read.",
    ]
    return [*lines, *report.failures_and_noise(summaries), *notes]


def markdown(
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """A table per cluster size, then the caption (headings from level 4)."""
    parts = []
    for members, by_server in results.items():
        title = "One member" if members == 1 else f"{members} members"
        parts += [f"#### {title}\n", report.side_by_side(by_server, rows(parameters), True), ""]
    items = "\n".join(f"- {line}" for line in caption(results, env, parameters, notes))
    return "\n".join(parts) + f"\n{items}\n"


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The run's parameters, as the caption and the JSON record them."""
    return load_parameters(args) | {
        "members": args.members,
        "watchers": args.watchers,
        "watch_processes": args.watch_processes,
        "watch_streams": args.watch_streams,
        "leases": args.leases,
        "hot_keys": args.hot_keys,
        "data_root": str(args.data_root),
        "data_root_is_tmpfs": filesystem_type(args.data_root) == "tmpfs",
        "sources": args.sources,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if a server or a worker failed."""
    args = parse_args(argv)
    started = time.perf_counter()
    env = report.environment({kind: server_version(kind) for kind in args.servers})
    run_parameters = parameters(args)
    try:
        with kv_sources(args.sources, run_parameters) as sources:
            results = benchmark(args, sources)
    except (ServerError, LoadError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    text = markdown(results, env, run_parameters, args.note)
    raw = {
        str(members): {k: asdict(run) for k, run in by.items()} for members, by in results.items()
    }
    report.save(args.output, text, report.record(env, run_parameters, args.note) | {"results": raw})
    report.progress(
        f"wrote {args.output} and {args.output.with_suffix('.json')} "
        f"({time.perf_counter() - started:.0f} s in all)"
    )
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
