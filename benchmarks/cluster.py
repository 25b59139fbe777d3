"""``python -m benchmarks.cluster``: three-member clusters, kv's beside etcd's, in one run.

From chapter 4 on, ``kv serve`` forms a Raft cluster with etcd's own flags. This run starts a
cluster of ``--members`` (3) of each server in turn (`benchmarks.clusters`: loopback ports,
data directories on the disk under ``--data-root``, the same flags for both), measures it,
and stops it before the next one starts:

1. **Throughput and latency.** With the same load generator as every other run
   (`benchmarks.load`): random puts sent to the leader, ``--clients`` in flight, then one in
   flight (a lone replicated write: its latency is the commit path's); then single-key
   ranges, linearizable (ReadIndex: the member asks the leader how far the log is committed
   and waits until it has applied that far) and serializable (answered from the member's own
   store), each sent to the leader and to a follower (the first member, in name order, that
   does not lead). Over both put windows each member's own counters are read: kv's through
   `benchmarks.kv_counters` (log fsyncs, and the time spent in each step of its Raft loop),
   etcd's from its ``/metrics`` page (log fsyncs and their duration).
2. **Leader kill** (`benchmarks.failover`): while a client writes steadily to every member,
   SIGKILL the leader; time from the kill to a new leader visible in a survivor's Status and
   to the first write committed after the kill; restart the killed member; ``--kill-trials``
   times.

Then it writes the tables (`benchmarks.cluster_report`) to ``--output``
(``benchmarks/results/cluster.md``) and the raw numbers beside it as JSON, and prints them.
The defaults take about six minutes on 2 cores; ``--quick`` (3 s phases, 2 kills) about two::

    python -m benchmarks.cluster
    python -m benchmarks.cluster --quick --output /tmp/cluster.md
"""

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import failover, fsyncs, kv_counters, procstat, report
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
from benchmarks.cluster_report import (
    KillRun,
    MemberCounters,
    PhaseRecord,
    Results,
    Target,
    markdown,
)
from benchmarks.clusters import Cluster, Timing, member_name, running_cluster
from benchmarks.load import LoadError, Operation, fill_key_space, run_phase
from benchmarks.servers import (
    ServerError,
    ServerOptions,
    filesystem,
    kv_sources,
    server_version,
)

DEFAULT_OUTPUT = Path("benchmarks/results/cluster.md")
#: etcd's counters read over the put windows, by the name this module gives them.
ETCD_COUNTERS = {
    "fsyncs": "etcd_disk_wal_fsync_duration_seconds_count",
    "fsync_seconds": "etcd_disk_wal_fsync_duration_seconds_sum",
    "backend_commits": "etcd_disk_backend_commit_duration_seconds_count",
    "backend_commit_seconds": "etcd_disk_backend_commit_duration_seconds_sum",
    "proposals_committed": "etcd_server_proposals_committed_total",
}


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One measured phase: what is sent, to which member, how many in flight."""

    operation: Operation
    target: Target
    alone: bool = False
    serializable: bool = False

    def label(self, clients: int) -> str:
        what = "put"
        if self.operation == "range":
            what = "serializable range" if self.serializable else "linearizable range"
        return f"{what} to the {self.target}, {1 if self.alone else clients} in flight"


PHASES = (
    PhaseSpec("put", "leader"),
    PhaseSpec("put", "leader", alone=True),
    PhaseSpec("range", "leader"),
    PhaseSpec("range", "follower"),
    PhaseSpec("range", "leader", serializable=True),
    PhaseSpec("range", "follower", serializable=True),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see ``python -m benchmarks.cluster --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster",
        description="Three-member clusters, kv beside the real etcd 3.4 in one run: puts, "
        "linearizable and serializable ranges, and the time to commit again after the "
        "leader is killed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_servers_argument(parser)
    add_load_arguments(parser)
    parser.add_argument("--members", type=int, default=3, help="members per cluster")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the members' data directories go: on the disk to be measured",
    )
    parser.add_argument("--heartbeat-interval", type=int, default=100, help="ms, both servers")
    parser.add_argument("--election-timeout", type=int, default=1000, help="ms, both servers")
    parser.add_argument("--snapshot-count", type=int, default=100_000, help="both servers")
    parser.add_argument("--kill-trials", type=int, default=5, help="leader kills (0: none)")
    parser.add_argument(
        "--kill-steady", type=float, default=2.0, help="seconds of steady writes before a kill"
    )
    parser.add_argument(
        "--kill-attempt-timeout",
        type=float,
        default=0.1,
        help="seconds a write may take during the kill test before it is retried",
    )
    parser.add_argument(
        "--kill-timeout",
        type=float,
        default=30.0,
        help="seconds a kill trial waits for a new leader and a committed write",
    )
    add_sources_argument(parser)
    add_report_arguments(
        parser,
        DEFAULT_OUTPUT,
        quick_help="a short run: 3 s phases after 1 s warm-ups, 2 leader kills",
    )
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)
    apply_quick(args, argv, {"duration": 3.0, "warmup": 1.0, "kill_trials": 2})
    check_load_arguments(parser, args)
    if args.members < 3:
        parser.error("--members must be at least 3 (a follower, and a quorum without the leader)")
    if args.kill_trials < 0 or args.kill_attempt_timeout <= 0:
        parser.error("--kill-trials must be 0 or more and --kill-attempt-timeout positive")
    return args


# --- the run -------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, sources: Path | None = None) -> Results:
    """Every measurement on a cluster of each server, one cluster at a time; kv runs from
    ``sources`` (see `frozen_sources`) if given."""
    options = ServerOptions(
        data_root=args.data_root,
        kv_command=fsyncs.KV_COUNTERS_COMMAND,
        start_timeout=60.0,
        cwd=sources,
    )
    timing = Timing(args.heartbeat_interval, args.election_timeout, args.snapshot_count)
    results = Results(load_average=(os.getloadavg()[0], math.nan))
    results.disk = fsyncs.probe_disk(args.data_root)
    report.progress(f"disk under {args.data_root}: fdatasync p50 {results.disk.p50_ms:.3g} ms")
    for kind in args.servers:
        started = time.perf_counter()
        with running_cluster(kind, options, args.members, timing) as cluster:
            results.startup_seconds[kind] = time.perf_counter() - started
            report.progress(
                f"{kind}: {args.members} members up in {results.startup_seconds[kind]:.1f} s, "
                f"pids {cluster.pids}, endpoints {cluster.endpoints}"
            )
            _throughput(cluster, args, results)
            if args.kill_trials:
                results.kills[kind] = _kill_trials(cluster, args)
            results.log_problems[kind] = cluster.log_problems()
            for line in results.log_problems[kind]:
                report.progress(f"{kind} log: {line}")
    results.load_average = (results.load_average[0], os.getloadavg()[0])
    return results


def _throughput(cluster: Cluster, args: argparse.Namespace, results: Results) -> None:
    cores = procstat.cores()
    filled = False
    for spec in PHASES:
        leader = cluster.leader()
        member = leader if spec.target == "leader" else cluster.follower(leader)
        endpoint = cluster.endpoints[member]
        if spec.operation == "range" and not filled:
            missing = fill_key_space(endpoint, args.keys, args.value_size, args.seed)
            report.progress(
                f"{cluster.kind}: put the {missing} keys the put phases had not written"
            )
            filled = True
        workload = load_workload(
            args, spec.operation, endpoint, alone=spec.alone, serializable=spec.serializable
        )
        label = spec.label(args.clients)
        readings: list[list[dict[str, float]]] = []
        counting = spec.operation == "put"

        def read(readings: list[list[dict[str, float]]] = readings) -> None:
            readings.append([_read_counters(cluster, index) for index in range(args.members)])

        phase = run_phase(workload, cluster.pids, read if counting else None)
        summary = report.summarize(cluster.kind, phase, cores, label)
        after = cluster.leader()
        members = {
            member_name(index): seconds for index, seconds in enumerate(phase.member_cpu_seconds)
        }
        results.phases.append(
            PhaseRecord(
                summary,
                spec.target,
                member_name(member),
                member_name(leader),
                member_name(after),
                members,
            )
        )
        report.progress(
            f"{cluster.kind} {label} ({member_name(member)}): "
            f"{summary.requests_per_second:,.0f} req/s, p50 {summary.p50_ms:.3g} ms, "
            f"p99 {summary.p99_ms:.3g} ms, CPU client {summary.client_cpu_share:.0%} members "
            f"{summary.server_cpu_share:.0%} other {summary.other_cpu_share:.0%}, errors "
            f"{sum(summary.errors.values())}"
            + ("" if after == leader else f"; THE LEADER CHANGED to {member_name(after)}")
        )
        if counting and len(readings) == 2:
            for index in range(args.members):
                before, now = readings[0][index], readings[1][index]
                results.counters.append(
                    MemberCounters(
                        server=cluster.kind,
                        phase=label,
                        member=member_name(index),
                        role="leader" if index == leader else "follower",
                        writes=summary.requests,
                        counters={name: now[name] - before.get(name, 0.0) for name in now},
                    )
                )


def _read_counters(cluster: Cluster, index: int) -> dict[str, float]:
    """Member ``index``'s own counters now, flattened to names and numbers."""
    member = cluster.members[index]
    if cluster.kind == "etcd":
        found = fsyncs.etcd_metrics(member.endpoint, tuple(ETCD_COUNTERS.values()))
        return {name: found[metric] for name, metric in ETCD_COUNTERS.items()}
    line = kv_counters.read(member.log_path, member.pid)
    flat: dict[str, float] = {
        "fsyncs": line["fsyncs"],
        "loop_cpu": line["loop_cpu"],
        "process_cpu": line["process_cpu"],
    }
    for name, (calls, wall, cpu) in line["stages"].items():
        flat[f"{name}.calls"], flat[f"{name}.wall"], flat[f"{name}.cpu"] = calls, wall, cpu
    for name, count in line["counts"].items():
        flat[name] = count
    flat["fsync_seconds"] = flat.get("wal_sync.wall", math.nan)
    return flat


def _kill_trials(cluster: Cluster, args: argparse.Namespace) -> KillRun:
    """The leader-kill trials, and how much of the machine others used meanwhile."""
    busy, ours = procstat.machine_busy_seconds(), _our_cpu_seconds(cluster)
    opened = time.perf_counter()
    trials = failover.run_trials(
        cluster,
        args.kill_trials,
        steady=args.kill_steady,
        attempt_timeout=args.kill_attempt_timeout,
        value_size=args.value_size,
        timeout=args.kill_timeout,
        settle=1.0,
        progress=report.progress,
    )
    capacity = (time.perf_counter() - opened) * procstat.cores()
    busy = procstat.machine_busy_seconds() - busy
    other = busy - (_our_cpu_seconds(cluster) - ours)
    return KillRun(trials, max(0.0, other) / capacity)


def _our_cpu_seconds(cluster: Cluster) -> float:
    """CPU used by this process, its reaped children (killed members) and the live members."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = sum(procstat.process_cpu_seconds(pid) for pid in cluster.pids)
    return time.process_time() + children.ru_utime + children.ru_stime + live


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The run's parameters, as the caption and the JSON record them."""
    device, fs_type = filesystem(args.data_root)
    return load_parameters(args) | {
        "members": args.members,
        "data_root": str(args.data_root),
        "data_root_device": device,
        "data_root_fs": fs_type,
        "heartbeat_interval": args.heartbeat_interval,
        "election_timeout": args.election_timeout,
        "snapshot_count": args.snapshot_count,
        "kill_trials": args.kill_trials,
        "kill_steady": args.kill_steady,
        "kill_attempt_timeout": args.kill_attempt_timeout,
        "kill_timeout": args.kill_timeout,
        "sources": args.sources,
    }


def write(
    output: Path,
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """Write the markdown to ``output`` and the raw numbers beside it (``.json``)."""
    text = markdown(results, env, parameters, notes)
    raw = report.record(env, parameters, notes) | {
        "disk": asdict(results.disk) if results.disk else None,
        "load_average": list(results.load_average),
        "startup_seconds": results.startup_seconds,
        "log_problems": results.log_problems,
        "phases": [asdict(record) for record in results.phases],
        "own_counters": [asdict(counters) for counters in results.counters],
        "leader_kills": {
            server: {
                "summary": asdict(failover.summarize(server, run.trials)),
                "other_cpu_share": run.other_cpu_share,
                "trials": [asdict(trial) for trial in run.trials],
            }
            for server, run in results.kills.items()
        },
    }
    report.save(output, text, raw)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if a server or a worker failed."""
    args = parse_args(argv)
    started = time.perf_counter()
    # When the run starts: the checkout the servers run.
    env = report.environment({kind: server_version(kind) for kind in args.servers})
    run_parameters = parameters(args)
    try:
        with kv_sources(args.sources, run_parameters) as sources:
            results = benchmark(args, sources)
    except (ServerError, LoadError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    text = write(args.output, results, env, run_parameters, args.note)
    report.progress(
        f"wrote {args.output} and {args.output.with_suffix('.json')} "
        f"({time.perf_counter() - started:.0f} s in all)"
    )
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
