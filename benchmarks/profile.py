"""``python -m benchmarks.profile``: where kv's server spends its time on the durable put path.

Starts kv (data directory on ``--data-root``, on the disk by default), drives it with the same
put load as `benchmarks.chapter2` (64 requests in flight), and while the window is open
samples the server with two profilers that do not stop it (`benchmarks.samplers`):

* **perf** (Debian's ``linux-perf``): ``perf record -e cpu-clock -g`` on the server's process,
  every thread. Each sample is sorted by where the CPU was: in which shared library for user
  code (the Python interpreter, gRPC's core, protobuf's upb, SQLite, libc), and for kernel
  code by the system call it serves (futex: threads handing over the GIL and work; the
  network; fsync; file writes; epoll and eventfd: the event loops' wake-ups). That is every
  CPU cycle the server used, C and kernel included.
* **py-spy** (``pip install py-spy``): ``py-spy record --nonblocking --gil``: the Python stack
  of whichever thread holds the GIL, so only the interpreter's share above, and sorted by
  kv's component (the innermost frame from kv's source decides): gRPC's Python glue, the
  request handling, the Raft loop (whose Ready batching is kv's group commit), the WAL, the
  SQLite backend, MVCC, the event loop. Stacks that end in the event loop running a callback
  written in C are gRPC's Cython core (reading requests, decoding them, sending answers),
  which perf also counts.

With ``--members 3`` it starts a three-member kv cluster instead (`benchmarks.clusters`,
as `benchmarks.cluster` does), sends the puts to the leader, and profiles the leader and one
follower the same way, side by side; py-spy's components then include the Raft loop, the
Raft core, the peer transport and its message encoding.

Either profiler missing (or not allowed, e.g. perf_event_paranoid) is noted and skipped. The
result goes to ``--output`` (``benchmarks/results/chapter2-profile.md``, or
``benchmarks/results/cluster-profile.md`` for a cluster) and beside it as JSON::

    python -m benchmarks.profile
    python -m benchmarks.profile --members 3
    python -m benchmarks.profile --duration 5 --output /tmp/profile.md
"""

import argparse
import contextlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import procstat, report
from benchmarks.arguments import add_load_arguments, check_load_arguments, load_workload
from benchmarks.clusters import running_cluster
from benchmarks.load import LoadError, run_phase
from benchmarks.samplers import (
    RATE,
    perf_buckets,
    perf_record,
    perf_unavailable,
    py_spy_buckets,
    py_spy_record,
    py_spy_unavailable,
)
from benchmarks.servers import (
    ServerError,
    ServerOptions,
    commit_of,
    frozen_sources,
    running_server,
    server_version,
)

DEFAULT_OUTPUT = Path("benchmarks/results/chapter2-profile.md")
CLUSTER_OUTPUT = Path("benchmarks/results/cluster-profile.md")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see ``python -m benchmarks.profile --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile",
        description="Profile kv's server under durable put load (perf and py-spy).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_load_arguments(
        parser, duration_help="seconds profiled", warmup_help="seconds before profiling"
    )
    parser.add_argument(
        "--data-root", type=Path, default=Path(tempfile.gettempdir()), help="data directories"
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        help="1: a lone server; 3 or more: a cluster, puts to the leader, the leader and a "
        "follower profiled",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown tables (default {DEFAULT_OUTPUT}, or {CLUSTER_OUTPUT} for a cluster)",
    )
    args = parser.parse_args(argv)
    check_load_arguments(parser, args)
    if args.members != 1 and args.members < 3:
        parser.error("--members must be 1, or 3 or more")
    if args.output is None:
        args.output = DEFAULT_OUTPUT if args.members == 1 else CLUSTER_OUTPUT
    return args


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """One profiled window of one server process."""

    requests_per_second: float
    server_cpu_us_per_request: float
    """This process's CPU per put (in a cluster: this member's)."""
    server_cpu_share: float
    other_cpu_share: float
    perf: dict[str, int]
    """perf samples by bucket (empty if perf was not run)."""
    py_spy: dict[str, int]
    """py-spy samples (GIL held) by bucket."""
    py_spy_seconds: float
    """How long py-spy sampled: its samples over this times `RATE` is the share of the time
    some thread held the GIL (if py-spy kept up)."""
    notes: list[str]
    role: str = ""
    """In a cluster, which member this is ("leader", "follower"); "" for a lone server."""
    members_cpu_share: float = math.nan
    """In a cluster, the share of the machine all members used together."""


@dataclass(frozen=True, slots=True)
class _Target:
    """A process to profile, and where its profilers write."""

    role: str
    pid: int
    index: int
    """Its place among the members (0 for a lone server)."""
    perf_data: Path
    spy_data: Path


def profile(args: argparse.Namespace, sources: Path | None = None) -> list[Profile]:
    """Run the load on a fresh kv (a cluster of ``--members``: the leader and a follower are
    profiled) and profile the window; kv runs from ``sources`` (`frozen_sources`) if given."""
    notes = []
    perf_note, spy_note = perf_unavailable(), py_spy_unavailable()
    for note in (perf_note, spy_note):
        if note:
            notes.append(note)
            _progress(note)
    scratch = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    profilers: list[subprocess.Popen[bytes]] = []
    options = ServerOptions(data_root=args.data_root, start_timeout=60.0, cwd=sources)
    try:
        with contextlib.ExitStack() as stack:
            if args.members == 1:
                server = stack.enter_context(running_server("kv", options))
                endpoint, pids = server.endpoint, [server.pid]
                targets = [_Target("", server.pid, 0, scratch / "perf", scratch / "spy")]
            else:
                cluster = stack.enter_context(running_cluster("kv", options, args.members))
                leader = cluster.leader()
                follower = cluster.follower(leader)
                endpoint, pids = cluster.endpoints[leader], cluster.pids
                targets = [
                    _Target(role, pids[index], index, scratch / f"perf-{role}", scratch / role)
                    for role, index in (("leader", leader), ("follower", follower))
                ]
            _progress(f"kv: started, pids {pids}, profiling {[t.pid for t in targets]}")

            def on_window() -> None:
                if profilers:  # the window closes: the profilers stop by themselves
                    return
                for target in targets:
                    if perf_note is None:
                        profilers.append(perf_record(target.pid, args.duration, target.perf_data))
                    if spy_note is None:
                        profilers.append(py_spy_record(target.pid, args.duration, target.spy_data))

            phase = run_phase(load_workload(args, "put", endpoint), pids, on_window)
            for profiler in profilers:
                profiler.wait(timeout=60)
        cores = procstat.cores()
        summary = report.summarize("kv", phase, cores)
        results = []
        for target in targets:
            perf = perf_buckets(target.perf_data) if target.perf_data.exists() else Counter()
            spy = py_spy_buckets(target.spy_data.open()) if target.spy_data.exists() else Counter()
            cpu = (
                phase.member_cpu_seconds[target.index]
                if phase.member_cpu_seconds
                else summary.server_cpu_seconds
            )
            results.append(
                Profile(
                    requests_per_second=summary.requests_per_second,
                    server_cpu_us_per_request=cpu * 1e6 / summary.requests,
                    server_cpu_share=cpu / (phase.wall_seconds * cores),
                    other_cpu_share=summary.other_cpu_share,
                    perf=dict(perf.most_common()),
                    py_spy=dict(spy.most_common()),
                    py_spy_seconds=math.ceil(args.duration),
                    notes=notes,
                    role=target.role,
                    members_cpu_share=summary.server_cpu_share if target.role else math.nan,
                )
            )
    finally:
        for profiler in profilers:
            with contextlib.suppress(OSError):
                profiler.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def _shares(samples: dict[str, int], us_per_request: float | None) -> str:
    total = sum(samples.values())
    header = "| where | share |" + (" µs per put |" if us_per_request else "")
    lines = [header, "| --- | ---: |" + (" ---: |" if us_per_request else "")]
    for name, count in samples.items():
        share = count / total
        cell = f" {share * us_per_request:.0f} |" if us_per_request else ""
        lines.append(f"| {name} | {share:.1%} |{cell}")
    return "\n".join(lines)


def _tables(result: Profile) -> list[str]:
    whose = f"The {result.role}'s" if result.role else "kv's server"
    parts = []
    if result.perf:
        parts += [
            f"#### {whose} CPU by where it ran (perf, every thread)\n",
            _shares(result.perf, result.server_cpu_us_per_request),
        ]
    if result.py_spy:
        held = sum(result.py_spy.values()) / (RATE * result.py_spy_seconds)
        interpreter = f"{whose} interpreter" if result.role else "The interpreter's share"
        parts += [
            f"\n#### {interpreter}, by kv component (py-spy, GIL holder)\n",
            _shares(result.py_spy, None),
            f"\nSome thread held the GIL at {held:.0%} of py-spy's samples.",
        ]
    return parts


def markdown(results: Sequence[Profile], env: report.Environment, args: argparse.Namespace) -> str:
    """The tables (two per profiled process) and a caption."""
    parts: list[str] = []
    for result in results:
        parts += [*([""] if parts else []), *_tables(result)]
    first = results[0]
    noise = f"other processes used {first.other_cpu_share:.0%} of the machine"
    quiet = first.other_cpu_share <= report.NOISE_THRESHOLD
    if first.role:
        where = (
            f"a cluster of {args.members} kv members on this machine, data directories under "
            f"{args.data_root}; puts sent to the leader; the leader and one follower profiled"
        )
        used = (
            f"the members used {first.members_cpu_share:.0%} of the machine together; "
            + ", ".join(
                f"the {r.role} {r.server_cpu_share:.0%}, {r.server_cpu_us_per_request:.0f} µs "
                "per put"
                for r in results
            )
        )
    else:
        where = f"data directory under {args.data_root}"
        used = (
            f"using {first.server_cpu_share:.0%} of the machine, "
            f"{first.server_cpu_us_per_request:.0f} µs of server CPU per put"
        )
    caption = [
        f"Measured {env.date} on {env.cores} cores ({env.cpu_model}), {env.python}, grpcio "
        f"{env.grpcio}; {env.versions['kv']}; "
        + (
            f"kv as committed at {args.kv_commit}."
            if getattr(args, "kv_commit", None)
            else f"checkout {env.commit}."
        ),
        f"Load: random puts, {args.clients} in flight from {args.processes} processes "
        f"({args.value_size}-byte values, {args.keys:,} keys), {where}; profiled for "
        f"{args.duration:g} s after a {args.warmup:g} s warm-up at {RATE} samples per second. "
        f"kv answered {first.requests_per_second:,.0f} puts per second"
        f"{'; ' if first.role else ' '}{used}; µs per put "
        "splits that by the perf shares.",
        "perf's cpu-clock samples in a virtual machine land where interrupts are enabled "
        "again, so kernel time shows up in the kernel's unlock and task-switch functions: "
        "the system call it belongs to is still right, the function inside it is not.",
        (f"Quiet: {noise}." if quiet else f"{report.PRELIMINARY} ({noise}).")
        + "".join(f" {note}." for note in first.notes),
    ]
    items = "\n".join(f"- {line}" for line in caption)
    return "\n".join(parts) + f"\n\n{items}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Profile; 0 on success, 1 if the server or the load failed."""
    args = parse_args(argv)
    env = report.environment({"kv": server_version("kv")})
    args.kv_commit = commit_of("HEAD")
    try:
        with frozen_sources("HEAD") as sources:  # every member runs the same, committed code
            results = profile(args, sources)
    except (ServerError, LoadError) as error:
        print(f"profile failed: {error}", file=sys.stderr)
        return 1
    text = markdown(results, env, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw: dict[str, object] = {"environment": asdict(env), "parameters": vars(args)}
    if len(results) == 1:
        raw["profile"] = asdict(results[0])
    else:
        raw["profiles"] = [asdict(result) for result in results]
    args.output.with_suffix(".json").write_text(json.dumps(report.finite(raw), indent=2) + "\n")
    _progress(f"wrote {args.output} and {args.output.with_suffix('.json')}")
    print(text, end="")
    return 0


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
