"""From raw phase results to the published table: aggregation, markdown and JSON.

Every number is per phase (one workload against one server). The load's workers are merged:
requests per second is every request that finished in the window over the window's length;
p50 and p99 are taken over all workers' latencies together. CPU is reported as a share of the
whole machine (1.0 = every core busy for the whole window), so that a saturated load generator
shows next to the server it is driving: whichever side is near its ceiling is the bottleneck.
"""

import contextlib
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from benchmarks import procstat
from benchmarks.load import PhaseResult

#: Other processes using more than this share of the machine during a measured window make
#: the run "preliminary" in the caption.
NOISE_THRESHOLD = 0.10
PRELIMINARY = "preliminary: measured while other work ran on the machine"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Summary:
    """One phase, aggregated: the numbers that go into a table row."""

    server: str
    operation: str
    workload: str
    """The table row's name: the operation, or a label that tells two loads of it apart."""
    requests: int
    errors: dict[str, int]
    wall_seconds: float
    requests_per_second: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_seconds: float
    server_cpu_seconds: float
    client_cpu_share: float
    server_cpu_share: float
    other_cpu_share: float
    """Everything else on the machine: what makes a run noisy."""
    client_cpu_us_per_request: float
    server_cpu_us_per_request: float
    """CPU microseconds per request: steadier than the rate when the machine is shared."""
    worker_requests: list[int]
    worker_cpu_seconds: list[float]
    counted: int = 0
    """What the load's calls counted (`benchmarks.load.WorkerResult.counted`): the requests,
    the compare-and-swaps that succeeded (txn), the events received (watch)."""
    counted_per_second: float = math.nan


@dataclass(frozen=True, slots=True)
class Environment:
    """Where and when the run happened."""

    date: str
    cores: int
    cpu_model: str
    python: str
    grpcio: str
    versions: dict[str, str]
    """Each server's version string, by server kind."""
    commit: str
    """The checkout's git commit, with ``+changes`` if the working tree differs from it
    (untracked files included: kv's new modules are untracked until committed)."""


def environment(versions: Mapping[str, str]) -> Environment:
    """This machine and interpreter now, with the servers' ``versions``."""
    return Environment(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=procstat.cores(),
        cpu_model=procstat.cpu_model(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        grpcio=version("grpcio"),
        versions=dict(versions),
        commit=_git_commit(),
    )


def _git_commit() -> str:
    """The short commit of this checkout, or "unknown" outside git."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+changes" if dirty else commit


def summarize(server: str, phase: PhaseResult, cores: int, workload: str | None = None) -> Summary:
    """Aggregate one phase's workers into a `Summary` (its row is named ``workload``, by
    default the operation)."""
    latencies = sorted(ns / 1e6 for worker in phase.workers for ns in worker.latencies_ns)
    errors: Counter[str] = Counter()
    for worker in phase.workers:
        errors.update(worker.errors)
    client_cpu = sum(worker.cpu_seconds for worker in phase.workers)
    capacity = phase.wall_seconds * cores
    ours = client_cpu + phase.server_cpu_seconds + phase.beside_cpu_seconds
    other = phase.machine_busy_seconds - ours
    p50, p90, p99 = _percentiles(latencies, (50, 90, 99))
    return Summary(
        server=server,
        operation=phase.workload.operation,
        workload=workload or phase.workload.operation,
        requests=len(latencies),
        errors=dict(errors),
        wall_seconds=phase.wall_seconds,
        requests_per_second=len(latencies) / phase.wall_seconds,
        mean_ms=statistics.fmean(latencies) if latencies else math.nan,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=latencies[-1] if latencies else math.nan,
        client_cpu_seconds=client_cpu,
        server_cpu_seconds=phase.server_cpu_seconds,
        client_cpu_share=client_cpu / capacity,
        server_cpu_share=phase.server_cpu_seconds / capacity,
        other_cpu_share=max(0.0, other) / capacity,
        client_cpu_us_per_request=_per_request(client_cpu, len(latencies)),
        server_cpu_us_per_request=_per_request(phase.server_cpu_seconds, len(latencies)),
        worker_requests=[len(worker.latencies_ns) for worker in phase.workers],
        worker_cpu_seconds=[worker.cpu_seconds for worker in phase.workers],
        counted=sum(worker.counted for worker in phase.workers),
        counted_per_second=sum(worker.counted for worker in phase.workers) / phase.wall_seconds,
    )


def progress(message: str) -> None:
    """A line of a run's progress on stderr, with the time of day."""
    with contextlib.suppress(OSError):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _per_request(seconds: float, requests: int) -> float:
    return seconds * 1e6 / requests if requests else math.nan


def _percentiles(ordered: Sequence[float], points: Sequence[int]) -> list[float]:
    """The given percentiles of ``ordered`` (nan if there are fewer than two samples)."""
    if len(ordered) < 2:
        return [math.nan for _ in points]
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return [cuts[point - 1] for point in points]


# --- the table -----------------------------------------------------------------------------

#: A column: its header, and its cell for one workload given that workload's summaries.
Column = tuple[str, Callable[[Mapping[str, Summary]], str]]


def _columns(servers: Sequence[str], p99_ratio: bool = False) -> list[Column]:
    def rate(server: str) -> Column:
        return f"{server} req/s", lambda row: f"{row[server].requests_per_second:,.0f}"

    def latency(server: str) -> Column:
        return (
            f"{server} p50 / p99 ms",
            lambda row: f"{_number(row[server].p50_ms)} / {_number(row[server].p99_ms)}",
        )

    def cpu(server: str) -> Column:
        return (
            f"{server} CPU client / server",
            lambda row: f"{row[server].client_cpu_share:.0%} / {row[server].server_cpu_share:.0%}",
        )

    columns = [rate(server) for server in servers]
    if "kv" in servers and "etcd" in servers:
        columns.append(("kv/etcd", lambda row: _number(_ratio(row["kv"], row["etcd"]))))
    columns += [latency(server) for server in servers]
    if p99_ratio and "kv" in servers and "etcd" in servers:
        columns.append(("kv/etcd p99", lambda row: _number(_p99_ratio(row["kv"], row["etcd"]))))
    columns += [cpu(server) for server in servers]
    return columns


def _ratio(kv: Summary, etcd: Summary) -> float:
    if etcd.requests_per_second == 0:
        return math.nan
    return kv.requests_per_second / etcd.requests_per_second


def _p99_ratio(kv: Summary, etcd: Summary) -> float:
    if math.isnan(kv.p99_ms) or math.isnan(etcd.p99_ms) or etcd.p99_ms == 0:
        return math.nan
    return kv.p99_ms / etcd.p99_ms


def _number(value: float) -> str:
    """Three significant digits, or a dash for a number that could not be measured."""
    return "-" if math.isnan(value) else f"{value:.3g}"


def table(summaries: Sequence[Summary], *, p99_ratio: bool = False) -> str:
    """The markdown table: one row per workload, kv's and etcd's numbers side by side (with
    ``p99_ratio`` also kv's p99 latency divided by etcd's)."""
    servers = list(dict.fromkeys(summary.server for summary in summaries))
    workloads = list(dict.fromkeys(summary.workload for summary in summaries))
    rows = {
        workload: {s.server: s for s in summaries if s.workload == workload}
        for workload in workloads
    }
    columns = _columns(servers, p99_ratio)
    lines = [
        "| workload | " + " | ".join(header for header, _ in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for workload, row in rows.items():
        cells = [cell(row) if set(servers) <= row.keys() else "-" for _, cell in columns]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: How the caption names the load's client, by ``--client``.
_CLIENTS = {
    # KVClient takes no channel options, so gRPC's global subchannel pool gives all the
    # channels of one process one TCP connection.
    "kv": "kv's `KVClient`; gRPC gives one process's channels one connection",
    "stub": "bare generated stubs, one connection per channel",
}


def caption(
    summaries: Sequence[Summary],
    env: Environment,
    parameters: Mapping[str, object],
    notes: Sequence[str],
) -> list[str]:
    """The caption's lines: when, where, how, and what to keep in mind when reading."""
    p = parameters
    versions = ", ".join(env.versions.values())
    lines = [
        f"Measured {env.date} on {env.cores} cores ({env.cpu_model}), {env.python}, "
        f"grpcio {env.grpcio}; {versions}; checkout {env.commit}. "
        "One server at a time, same flags, same load.",
        f"Load: {p['clients']} requests in flight; load processes: {p['processes']}, "
        f"channels per process: {p['channels']} ({_CLIENTS[str(p['client'])]}); "
        f"keys: {p['keys']:,}; values: {p['value_size']} bytes; each workload measured for "
        f"{p['duration']:g} s after a {p['warmup']:g} s warm-up. put: a random key; range: "
        "a single existing key, "
        "linearizable (etcd's default; kv has no Raft yet, so for it that is serializable).",
        "kv/etcd is kv's requests per second divided by etcd's in this run. CPU is a share of "
        f"the whole machine (100% = all {env.cores} cores) used by the load generator (client) "
        "and by the server during the measured window; the side near its ceiling is the "
        f"bottleneck. A Python process runs its Python code on one core at a time, so kv's "
        f"server, and each load process, tops out near {1 / env.cores:.0%}.",
        "**Caveat:** kv chapter 1 keeps everything in memory and writes nothing to disk, while "
        "etcd writes each put to its write-ahead log and "
        + (
            "would fsync it, but ran with `--unsafe-no-fsync`."
            if p["etcd_unsafe_no_fsync"]
            else "fsyncs it before answering."
        )
        + f" Both data directories were under {p['data_root']}"
        + (
            " (tmpfs, where fsync returns at once): the disk's speed is left out of etcd's "
            "numbers, the work of its durable write path is not."
            if p["data_root_is_tmpfs"]
            else "."
        ),
    ]
    return [*lines, *failures_and_noise(summaries), *notes]


def failures_and_noise(summaries: Sequence[Summary]) -> list[str]:
    """A caption's closing lines: the failed requests, if any, by server and workload; then
    whether the run was quiet (`NOISE_THRESHOLD`) or preliminary."""
    other = max((s.other_cpu_share for s in summaries), default=0.0)
    return [*failed_requests(summaries), noise(other)]


def failed_requests(summaries: Iterable[Summary]) -> list[str]:
    """A caption's line on the requests that failed, by server and workload (none if none)."""
    errors = [
        f"{s.server} {s.workload}: {', '.join(f'{n} {c}' for c, n in s.errors.items())}"
        for s in summaries
        if s.errors
    ]
    return ["Failed requests (not counted above): " + "; ".join(errors) + "."] if errors else []


def noise(
    measured: float,
    also: Sequence[tuple[float, str]] = (),
    load_average: tuple[float, float] | None = None,
) -> str:
    """A caption's line on how quiet the machine was: the most of it other processes used
    during a measured window (``measured``) and at the other times named in ``also``
    (share, when), and the load average at either end of the run; "Quiet" if every share is
    within `NOISE_THRESHOLD`, else `PRELIMINARY`."""
    text = f"other processes used up to {measured:.0%} of the machine during a measured window"
    text += "".join(f", {share:.0%} {when}" for share, when in also)
    if load_average is not None:
        before, after = load_average
        text += f"; load average {before:.2f} when the run began, {after:.2f} when it ended"
    quiet = max([measured, *(share for share, _ in also)]) <= NOISE_THRESHOLD
    return f"Quiet: {text}." if quiet else f"{PRELIMINARY} ({text})."


def markdown(
    summaries: Sequence[Summary],
    env: Environment,
    parameters: Mapping[str, object],
    notes: Sequence[str] = (),
) -> str:
    """The table with its caption below it, as one markdown document (no heading: the
    performance page includes it under its own)."""
    items = "\n".join(f"- {line}" for line in caption(summaries, env, parameters, notes))
    return f"{table(summaries)}\n\n{items}\n"


def write(
    output: Path,
    summaries: Sequence[Summary],
    env: Environment,
    parameters: Mapping[str, object],
    notes: Sequence[str] = (),
) -> str:
    """Write the markdown to ``output`` and the raw numbers beside it (``.json``); return the
    markdown."""
    text = markdown(summaries, env, parameters, notes)
    results = {"results": [asdict(summary) for summary in summaries]}
    save(output, text, record(env, parameters, notes) | results)
    return text


def record(
    env: Environment, parameters: Mapping[str, object], notes: Sequence[str]
) -> dict[str, object]:
    """What every run's JSON starts with: where, with which parameters, and the notes."""
    return {"environment": asdict(env), "parameters": dict(parameters), "notes": list(notes)}


def save(output: Path, text: str, raw: Mapping[str, object]) -> None:
    """Write a run's markdown to ``output`` and its raw numbers beside it (``.json``)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    output.with_suffix(".json").write_text(json.dumps(finite(raw), indent=2) + "\n")


def finite(value: object) -> object:
    """``value`` with NaN (a number that could not be measured) as null, which JSON allows."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(key): finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


# --- tables of figures, one column per server ----------------------------------------------


def figure(value: float) -> str:
    """Three significant digits (thousands separated), or a dash if not measured."""
    if math.isnan(value):
        return "-"
    if abs(value) >= 999.5:  # rounds to four digits or more: no exponent
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _figure_ratio(kv: float, etcd: float) -> str:
    return figure(kv / etcd) if etcd else "-"


#: A row of a kv-beside-etcd table: its label, and its cell for one server's result (a
#: number, which gets a kv/etcd ratio, or text, which does not).
Row = tuple[str, Callable[[T], float | str]]


def side_by_side(results: Mapping[str, T], rows: Sequence[Row[T]], ratio: bool) -> str:
    """A table with a column per server (in ``results``' order), a row per ``rows`` entry,
    and with ``ratio`` a kv/etcd column for the rows whose cells are numbers."""
    servers = list(results)
    with_ratio = ratio and {"kv", "etcd"} <= results.keys()
    header = ["", *servers, *(["kv/etcd"] if with_ratio else [])]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for label, cell in rows:
        values = {server: cell(result) for server, result in results.items()}
        cells = [value if isinstance(value, str) else figure(value) for value in values.values()]
        if with_ratio:
            kv, etcd = values["kv"], values["etcd"]
            both = not isinstance(kv, str) and not isinstance(etcd, str)
            cells.append(_figure_ratio(kv, etcd) if both else "")  # type: ignore[arg-type]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
