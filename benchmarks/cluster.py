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

Then it writes the tables to ``--output`` (``benchmarks/results/cluster.md``) and the raw
numbers beside it as JSON, and prints them. The defaults take about six minutes on 2 cores;
``--quick`` (3 s phases, 2 kills) about two::

    python -m benchmarks.cluster
    python -m benchmarks.cluster --quick --output /tmp/cluster.md
"""

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

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
from benchmarks.clusters import Cluster, Timing, member_name, running_cluster
from benchmarks.load import LoadError, Operation, fill_key_space, run_phase
from benchmarks.report import Summary
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
Target = Literal["leader", "follower"]


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


@dataclass(frozen=True, slots=True)
class PhaseRecord:
    """One measured phase on one cluster."""

    summary: Summary
    target: Target
    member: str
    """The member the load was sent to."""
    leader_before: str
    leader_after: str
    """Who led when the phase began and when it ended (a change means an election)."""
    member_cpu_seconds: dict[str, float]
    """Each member's CPU over the window (the summary's server CPU is their sum)."""


@dataclass(frozen=True, slots=True)
class MemberCounters:
    """One member's own counters over a put window: the difference of two readings."""

    server: str
    phase: str
    member: str
    role: Target
    writes: int
    """Puts the load saw acknowledged in the window (by the whole cluster)."""
    counters: dict[str, float]

    def get(self, name: str) -> float:
        return self.counters.get(name, math.nan)

    def per_write(self, name: str, scale: float = 1.0) -> float:
        return self.get(name) * scale / self.writes if self.writes else math.nan

    def per_call(self, name: str, calls: str, scale: float = 1.0) -> float:
        count = self.get(calls)
        return self.get(name) * scale / count if count else math.nan


@dataclass(slots=True)
class KillRun:
    """One server's leader kills, and how busy the machine was meanwhile."""

    trials: list[failover.KillTrial]
    other_cpu_share: float
    """The share of the machine that neither the members nor this process used."""


@dataclass(slots=True)
class Results:
    """Everything one run measured."""

    phases: list[PhaseRecord] = field(default_factory=list)
    counters: list[MemberCounters] = field(default_factory=list)
    kills: dict[str, KillRun] = field(default_factory=dict)
    startup_seconds: dict[str, float] = field(default_factory=dict)
    """Launch of the first member to every member answering, by server."""
    disk: fsyncs.DiskProbe | None = None
    load_average: tuple[float, float] = (math.nan, math.nan)
    log_problems: dict[str, list[str]] = field(default_factory=dict)
    """Error lines the members logged, by server (see `Cluster.log_problems`)."""


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


# --- the report ----------------------------------------------------------------------------


def kill_table(kills: Mapping[str, KillRun]) -> str:
    """The leader-kill trials summarized, a column per server."""
    summaries = {server: failover.summarize(server, run.trials) for server, run in kills.items()}

    def each(get: Callable[[failover.KillTrial], float]) -> Callable[[failover.KillSummary], str]:
        def cell(summary: failover.KillSummary) -> str:
            return ", ".join(report.figure(get(t)) for t in kills[summary.server].trials)

        return cell

    rows: list[report.Row[failover.KillSummary]] = [
        ("trials (leader killed with SIGKILL)", lambda s: f"{s.trials}"),
        ("... a write committed again within the timeout", lambda s: f"{s.recovered}"),
        ("**kill to first committed write, median s**", lambda s: s.first_write_median),
        ("... max s", lambda s: s.first_write_max),
        ("... each trial, s", each(lambda t: t.first_write_seconds)),
        ("**kill to a new leader in Status, median s**", lambda s: s.leader_median),
        ("... max s", lambda s: s.leader_max),
        ("... each trial, s", each(lambda t: t.leader_seconds)),
        (
            "terms each election took",
            lambda s: ", ".join(
                f"{t.term_after - t.term_before}" if t.term_after else "-"
                for t in kills[s.server].trials
            ),
        ),
        (
            "steady writes per second before the kill",
            lambda s: statistics.fmean(t.steady_writes_per_second for t in kills[s.server].trials),
        ),
        ("killed member restarted: launch to first answer, median s", lambda s: s.restart_median),
    ]
    return report.side_by_side(summaries, rows, ratio=True)


def cpu_table(phases: Sequence[PhaseRecord]) -> str:
    """CPU per request of the whole cluster, and of the leader and of a follower."""
    servers = list(dict.fromkeys(r.summary.server for r in phases))
    rows = {
        workload: {r.summary.server: r for r in phases if r.summary.workload == workload}
        for workload in dict.fromkeys(r.summary.workload for r in phases)
    }
    with_ratio = {"kv", "etcd"} <= set(servers)
    header = [
        "workload",
        *(f"{server}: all members" for server in servers),
        *(["kv/etcd"] if with_ratio else []),
        *(f"{server}: leader / followers" for server in servers),
    ]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for workload, by_server in rows.items():
        if set(servers) - by_server.keys():
            continue
        totals = {server: by_server[server].summary.server_cpu_us_per_request for server in servers}
        cells = [report.figure(totals[server]) for server in servers]
        if with_ratio:
            cells.append(report.figure(totals["kv"] / totals["etcd"]))
        for server in servers:
            leader, followers = _member_cpu_us(by_server[server])
            each = ", ".join(report.figure(value) for value in followers)
            cells.append(f"{report.figure(leader)} / {each}")
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _member_cpu_us(record: PhaseRecord) -> tuple[float, list[float]]:
    """The leader's CPU µs per request, and each follower's (the one the load went to
    first)."""
    scale = 1e6 / record.summary.requests if record.summary.requests else math.nan
    cpu = record.member_cpu_seconds
    followers = sorted(
        (member for member in cpu if member != record.leader_before),
        key=lambda member: member != record.member,
    )
    leader = cpu.get(record.leader_before, math.nan)
    return leader * scale, [cpu[member] * scale for member in followers]


def _mean(values: Sequence[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return statistics.fmean(finite) if finite else math.nan


@dataclass(frozen=True, slots=True)
class _Column:
    """The own counters of one role (the leader, or the followers' mean) in one put phase."""

    members: list[MemberCounters]

    def mean(self, get: Callable[[MemberCounters], float]) -> float:
        return _mean([get(member) for member in self.members])


def _counter_columns(results: Results, server: str) -> dict[str, _Column]:
    columns: dict[str, _Column] = {}
    phases = list(dict.fromkeys(c.phase for c in results.counters if c.server == server))
    for phase in phases:
        in_flight = phase.rsplit(", ", 1)[-1]
        for role in ("leader", "follower"):
            members = [
                c
                for c in results.counters
                if c.server == server and c.phase == phase and c.role == role
            ]
            if members:
                name = "followers" if role == "follower" else role
                columns[f"{name}, {in_flight}"] = _Column(members)
    return columns


def fsync_table(results: Results) -> str:
    """Log fsyncs per write and their duration, by member role, for each server."""
    lines = []
    header = ["server", "member", "log fsyncs per write", "writes per fsync", "mean fsync, ms"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- | --- |" + " ---: |" * (len(header) - 2))
    for server in dict.fromkeys(c.server for c in results.counters):
        for name, column in _counter_columns(results, server).items():
            per_write = column.mean(lambda c: c.per_write("fsyncs"))
            mean_ms = column.mean(lambda c: c.per_call("fsync_seconds", "fsyncs", 1e3))
            cells = [
                server,
                name,
                report.figure(per_write),
                report.figure(1 / per_write if per_write else math.nan),
                report.figure(mean_ms),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: kv's Raft loop steps that run on the event loop's thread (CPU), in the order a put meets
#: them, with what the account calls them.
_LOOP_STAGES = (
    ("quota", "quota check (the backend's size)"),
    ("propose", "propose (the puts queued since the last turn enter the core)"),
    ("ready", "ready (the core hands out a batch)"),
    ("wal_save", "WAL save (encode and write the records)"),
    ("send", "send (queue messages for peers)"),
    ("encode", "encode messages to protobuf"),
    ("receive", "receive (decode a peer's message, step the core)"),
    ("apply", "apply (state machine, backend commit, answer waiters)"),
    ("advance", "advance"),
    ("tick", "tick"),
)
#: Steps measured inside another one (not added again to the sum).
_NESTED = {
    "receive": (
        ("decode", "decode (protobuf to kv.raft's message)"),
        ("is_removed", "is the sender a removed member? (a SQLite query)"),
        ("step", "step the core (a proposal's step counted here too)"),
    ),
}


def raft_loop_table(results: Results) -> str:
    """kv's Raft loop by its own counters: the CPU of each step per put, and the waits."""
    columns = _counter_columns(results, "kv")
    if not columns:
        return ""
    rows: list[tuple[str, Callable[[MemberCounters], float]]] = [
        ("Readys handled per put", lambda c: c.per_write("ready.calls")),
        ("entries per Ready persisted", lambda c: c.per_call("entries_persisted", "ready.calls")),
        ("messages sent per put", lambda c: c.per_write("messages_sent")),
        (
            "**a put inside the member, wall ms** (handed over by gRPC to answered)",
            lambda c: c.per_call("server_put.wall", "server_put.calls", 1e3),
        ),
        (
            "**persist per Ready, wall ms** (fsync included)",
            lambda c: c.per_call("persist.wall", "persist.calls", 1e3),
        ),
        (
            "**pacing wait per Ready, wall ms** (a busy leader's turns spaced out)",
            lambda c: c.per_call("pace.wall", "ready.calls", 1e3),
        ),
        ("... fsyncs per put", lambda c: c.per_write("fsyncs")),
        ("... mean fsync, wall ms", lambda c: c.per_call("fsync_seconds", "fsyncs", 1e3)),
    ]
    for stage, label in _LOOP_STAGES:
        rows.append((f"CPU µs per put: {label}", _stage_cpu(stage)))
        for inner, inner_label in _NESTED.get(stage, ()):
            rows.append((f"... {inner_label}", _stage_cpu(inner)))
    rows += [
        ("**CPU µs per put: the Raft loop's steps above**", _loop_steps_cpu),
        (
            "CPU µs per put: the rest of the event loop's thread",
            lambda c: c.per_write("loop_cpu", 1e6) - _loop_steps_cpu(c),
        ),
        (
            "CPU µs per put: other threads (gRPC's, the fsync's)",
            lambda c: c.per_write("process_cpu", 1e6) - c.per_write("loop_cpu", 1e6),
        ),
        ("**CPU µs per put, the whole member**", lambda c: c.per_write("process_cpu", 1e6)),
    ]
    header = ["", *columns]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(columns)]
    for label, get in rows:
        cells = [report.figure(column.mean(get)) for column in columns.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _stage_cpu(stage: str) -> Callable[[MemberCounters], float]:
    return lambda c: c.per_write(f"{stage}.cpu", 1e6)


def _loop_steps_cpu(counters: MemberCounters) -> float:
    return sum(
        value
        for stage, _ in _LOOP_STAGES
        if not math.isnan(value := counters.per_write(f"{stage}.cpu", 1e6))
    )


def caption(
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, Any],
    notes: Sequence[str],
) -> list[str]:
    """The caption's lines: when, where, how, and what to keep in mind when reading."""
    p = parameters
    versions = ", ".join(env.versions.values())
    disk = results.disk
    members = p["members"]
    lines = [
        f"Measured {env.date} on {env.cores} cores ({env.cpu_model}), {env.python}, grpcio "
        f"{env.grpcio}; {versions}; "
        + (
            f"kv as committed at {p['kv_commit']}"
            if "kv_commit" in p
            else f"checkout {env.commit} (kv's sources: {p.get('kv_sources', '?')})"
        )
        + f". One cluster at a time, {members} members each, same flags, same load.",
        f"**One machine: its {env.cores} cores are shared by the {members} members and the "
        "load generator**, so a member's CPU is also its peers' and the client's; a real "
        "cluster has a machine per member. Members talk over loopback TCP, with etcd's "
        f"flags: `--heartbeat-interval {p['heartbeat_interval']}`, `--election-timeout "
        f"{p['election_timeout']}`, `--snapshot-count {p['snapshot_count']}`, "
        "`--initial-cluster-state new`, one cluster token.",
        f"Disk: every member's data directory under {p['data_root']}, on "
        f"{p['data_root_device']} ({p['data_root_fs']}), all {members} on the same disk"
        + (
            f"; a bare 4 KiB append + fdatasync there took {disk.p50_ms:.3g} ms (p50) / "
            f"{disk.p99_ms:.3g} ms (p99) over {disk.samples} tries."
            if disk is not None
            else "."
        )
        + (" **That is tmpfs: fsync returns at once.**" if p["data_root_fs"] == "tmpfs" else ""),
        f"Load: {p['clients']} requests in flight from {p['processes']} load processes with "
        f"{p['channels']} channels each, or 1 in flight from one; keys: {p['keys']:,}; "
        f"values: {p['value_size']} bytes; each workload measured for {p['duration']:g} s "
        f"after a {p['warmup']:g} s warm-up. Puts go to the leader; ranges read one existing "
        "key, from the leader or from a follower (the first member in name order that does "
        "not lead). A linearizable range waits for a ReadIndex round (the leader confirms it "
        "still leads and how far the log is committed; a follower asks the leader for that "
        "index, then waits until it has applied that far); a serializable one is answered "
        "from the member's own store at once. kv/etcd is kv's requests per second divided by "
        "etcd's; kv/etcd p99 is kv's p99 latency divided by etcd's. CPU: client is the load "
        "generator, server is all members together, as shares of the whole machine (100% = "
        f"all {env.cores} cores); per request, the CPU time of all members together, of the "
        "leader and of each follower (the one the load went to first), over the requests "
        "answered.",
    ]
    if results.counters:
        lines.append(
            "Own counters, over each put window: each member's log fsyncs (kv: `WAL.sync` "
            "calls counted by `benchmarks.kv_counters`, which runs `kv serve` unchanged and "
            "prints its counters on SIGUSR1; etcd: `etcd_disk_wal_fsync_duration_seconds` on "
            "`/metrics`) divided by the puts acknowledged in the window; followers: the mean "
            "of the followers. kv's Raft loop: `benchmarks.kv_counters` also times each step "
            "of the loop (about a microsecond per call, a few percent of a member's CPU): CPU of "
            "the thread that ran it, or "
            "for waits (a put inside the member; persist, which awaits the fsync in a worker "
            "thread; the pacing wait) the wall time."
        )
    if results.kills:
        lines.append(
            f"Leader kill (`benchmarks.failover`): a client keeps one put in flight to each "
            f"member (retrying on that member after any error; a put gives up after "
            f"{p['kill_attempt_timeout'] * 1e3:g} ms, which bounds the measurement's "
            f"resolution); after {p['kill_steady']:g} s the leader gets SIGKILL. First "
            "committed write: the first put sent after the kill that is acknowledged. New "
            "leader in Status: the first Status answer of a surviving member, polled every "
            f"{failover.STATUS_POLL_SECONDS * 1e3:g} ms, naming a live leader. The killed "
            "member is then restarted on its data and the next trial kills whoever leads. "
            "Raft's randomized election timeout (between one and two election timeouts) "
            "dominates these times, and a split vote costs another round; so the spread "
            "between trials is large, and a few trials say little about the ratio."
        )
    changed = [r for r in results.phases if r.leader_before != r.leader_after]
    if changed:
        lines.append(
            "**The leader changed during** "
            + "; ".join(
                f"{r.summary.server} {r.summary.workload} ({r.leader_before} to {r.leader_after})"
                for r in changed
            )
            + "."
        )
    errors = [
        f"{s.server} {s.workload}: {', '.join(f'{n} {c}' for c, n in s.errors.items())}"
        for s in (r.summary for r in results.phases)
        if s.errors
    ]
    if errors:
        lines.append("Failed requests (not counted above): " + "; ".join(errors) + ".")
    other = max((r.summary.other_cpu_share for r in results.phases), default=0.0)
    killing = max((run.other_cpu_share for run in results.kills.values()), default=0.0)
    before, after = results.load_average
    noise = f"other processes used up to {other:.0%} of the machine during a measured window"
    if results.kills:
        noise += f", {killing:.0%} during the leader kills"
    noise += f"; load average {before:.2f} when the run began, {after:.2f} when it ended"
    quiet = max(other, killing) <= report.NOISE_THRESHOLD
    lines.append(f"Quiet: {noise}." if quiet else f"{report.PRELIMINARY} ({noise}).")
    return [*lines, *notes]


def markdown(
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """The tables and the caption as one markdown document (headings from level 4, since the
    performance page includes it under its own)."""
    summaries = [record.summary for record in results.phases]
    parts = ["#### Puts and ranges\n", report.table(summaries, p99_ratio=True)]
    parts += ["\n#### CPU per request, µs\n", cpu_table(results.phases)]
    if results.kills:
        parts += ["\n#### Leader killed\n", kill_table(results.kills)]
    if results.counters:
        parts += ["\n#### Log fsyncs in the put windows, by the members' own counters\n"]
        parts += [fsync_table(results)]
        loop = raft_loop_table(results)
        if loop:
            parts += ["\n#### kv's Raft loop in the put windows, by its own counters\n", loop]
    items = "\n".join(f"- {line}" for line in caption(results, env, parameters, notes))
    return "\n".join(parts) + f"\n\n{items}\n"


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
