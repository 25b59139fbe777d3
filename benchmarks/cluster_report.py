"""What a run of ``python -m benchmarks.cluster`` measured, and the report written from it.

`benchmarks.cluster` runs the clusters and fills a `Results`: every measured phase
(`PhaseRecord`), each member's own counters over the put windows (`MemberCounters`), the
leader kills (`KillRun`). This module turns them into the markdown of the results file: the
throughput table, CPU per request by member, the leader kills, log fsyncs, kv's Raft loop by
its own counters (`benchmarks.kv_counters`), and the caption that says how it was measured.
"""

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmarks import failover, fsyncs, report
from benchmarks.report import Summary

Target = Literal["leader", "follower"]


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
    lines += report.failed_requests(record.summary for record in results.phases)
    other = max((r.summary.other_cpu_share for r in results.phases), default=0.0)
    killing = max((run.other_cpu_share for run in results.kills.values()), default=0.0)
    also = [(killing, "during the leader kills")] if results.kills else []
    lines.append(report.noise(other, also, results.load_average))
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
