"""What a run of ``python -m benchmarks.chapter2`` measured, and the report written from it.

`benchmarks.chapter2` runs the servers and fills a `Results`: the durable puts and gets, each
server's log fsyncs by its own counter and by strace, the restart. This module turns them into
the markdown of the results file: those three tables and the caption that says how it was
measured.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks import fsyncs, report, restart
from benchmarks.report import Summary

MIB = 2**20


@dataclass(slots=True)
class Results:
    """Everything one run measured."""

    summaries: list[Summary]
    own_counts: list[fsyncs.OwnCount]
    """Log fsyncs by each server's own counter, in the untraced put phase."""
    fsync_counts: list[fsyncs.FsyncCount]
    fsync_note: str | None
    """Why sync calls were not counted, if they were not."""
    restarts: list[restart.RestartResult]
    disk: fsyncs.DiskProbe
    load_average: tuple[float, float]
    """The 1-minute load average when the run began and when it ended."""


@dataclass(frozen=True, slots=True)
class _Syncs:
    """One server's two counts of its sync calls: its own, and strace's."""

    own: fsyncs.OwnCount | None
    traced: fsyncs.FsyncCount | None


def fsync_table(own: Sequence[fsyncs.OwnCount], traced: Sequence[fsyncs.FsyncCount]) -> str:
    """Log fsyncs per acknowledged write by the servers' own counters, and sync calls per
    write by file under strace, for each server."""
    servers = list(dict.fromkeys([c.server for c in own] + [c.server for c in traced]))
    by_server = {
        server: _Syncs(
            next((c for c in own if c.server == server), None),
            next((c for c in traced if c.server == server), None),
        )
        for server in servers
    }
    nan = math.nan

    def mine(get: Callable[[fsyncs.OwnCount], float | str]) -> Callable[[_Syncs], float | str]:
        return lambda s: nan if s.own is None else get(s.own)

    def strace(
        get: Callable[[fsyncs.FsyncCount], float | str],
    ) -> Callable[[_Syncs], float | str]:
        return lambda s: nan if s.traced is None else get(s.traced)

    rows: list[report.Row[_Syncs]] = []
    if own:
        rows += [
            ("own counter", mine(lambda c: f"`{c.source}`")),
            ("**log fsyncs per write**", mine(lambda c: c.per_write)),
            ("**writes per log fsync** (the group's size)", mine(lambda c: c.writes_per_fsync)),
        ]
    if traced:
        rows += [
            ("under strace: put req/s", strace(lambda c: c.requests_per_second)),
            (
                "... put p50 / p99 ms",
                strace(lambda c: f"{report.figure(c.p50_ms)} / {report.figure(c.p99_ms)}"),
            ),
            ("... sync calls per write, all files", strace(lambda c: c.per_write())),
            ("... on the log (`member/wal/*.wal`)", strace(lambda c: c.per_write("wal"))),
            ("... on the backend (`member/snap/db*`)", strace(lambda c: c.per_write("backend"))),
            ("... on anything else", strace(lambda c: c.per_write("other"))),
            ("... writes per log sync", strace(lambda c: c.writes_per_wal_sync)),
            ("... mean log sync, ms", strace(lambda c: c.mean_ms.get("wal", nan))),
            (
                "... system calls",
                strace(
                    lambda c: ", ".join(f"{n:,} {name}" for name, n in sorted(c.by_call.items()))
                ),
            ),
        ]
    return report.side_by_side(by_server, rows, ratio=False)


def restart_table(restarts: Sequence[restart.RestartResult]) -> str:
    """Load, stop, restart and memory with many keys, for each server."""
    keys = restarts[0].keys
    rows: list[report.Row[restart.RestartResult]] = [
        (f"load {keys:,} keys through the API, s", lambda r: r.load_seconds),
        ("... keys per second", lambda r: r.load_rate),
        ("RSS after loading, MiB", lambda r: r.memory_loaded.rss / MIB),
        ("clean stop (SIGTERM), s", lambda r: r.stop_seconds),
        ("data directory: log, MiB", lambda r: r.wal_bytes / MIB),
        ("data directory: backend and snapshots, MiB", lambda r: r.snap_bytes / MIB),
        ("**restart: launch to first answered Range, s**", lambda r: r.startup_seconds),
        ("... CPU used meanwhile, s", lambda r: r.startup_cpu_seconds),
        ("**RSS after recovery, MiB**", lambda r: r.memory_recovered.rss / MIB),
        ("... of it heap (RssAnon), MiB", lambda r: r.memory_recovered.anon / MIB),
        ("count every key (one count-only Range), s", lambda r: r.count_seconds),
        ("**RSS after the count, MiB**", lambda r: r.memory_counted.rss / MIB),
        ("peak RSS of the restarted server (VmHWM), MiB", lambda r: r.peak_rss / MIB),
    ]
    return report.side_by_side({r.server: r for r in restarts}, rows, ratio=True)


def caption(
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, object],
    notes: Sequence[str],
) -> list[str]:
    """The caption's lines: when, where, how, and what to keep in mind when reading."""
    p = parameters
    versions = ", ".join(env.versions.values())
    disk = results.disk
    on_tmpfs = p["data_root_fs"] == "tmpfs"
    lines = [
        f"Measured {env.date} on {env.cores} cores ({env.cpu_model}), {env.python}, "
        f"grpcio {env.grpcio}; {versions}; checkout {env.commit}. "
        "One server at a time, same flags, same load; both durable (etcd fsyncs its log "
        "before answering, and so does kv since chapter 2).",
        f"Disk: both data directories under {p['data_root']}, on {p['data_root_device']} "
        f"({p['data_root_fs']}); a bare 4 KiB append + fdatasync there took "
        f"{disk.p50_ms:.3g} ms (p50) / {disk.p99_ms:.3g} ms (p99) over {disk.samples} tries."
        + (
            " **That is tmpfs: fsync returns at once, so these are not durable-disk figures.**"
            if on_tmpfs
            else ""
        ),
        f"Throughput: {p['clients']} requests in flight from {p['processes']} load processes "
        f"with {p['channels']} channels each, or 1 in flight from one; keys: {p['keys']:,}; "
        f"values: {p['value_size']} bytes; each workload measured for {p['duration']:g} s "
        f"after a {p['warmup']:g} s warm-up. put: a random key; range: a single existing key, "
        "linearizable (kv has no Raft yet, so for it that is serializable). kv/etcd is kv's "
        "requests per second divided by etcd's. CPU is a share of the whole machine "
        f"(100% = all {env.cores} cores); kv's server tops out near {1 / env.cores:.0%}.",
    ]
    if results.own_counts:
        lines.append(
            "fsyncs per write, own counters: over the window of the first put phase above, "
            "the log fsyncs each server counted itself (kv: its calls of `WAL.sync`, "
            "counted and printed on SIGUSR1 by `benchmarks.kv_counters`, which runs "
            "`kv serve` unchanged; etcd: `etcd_disk_wal_fsync_duration_seconds_count` on its "
            "`/metrics` page), divided by the writes the load saw acknowledged in it."
        )
    if results.fsync_note is None:
        lines.append(
            "Under strace: a separate put phase, same load, on a fresh server run under "
            "`strace -f --seccomp-bpf -e trace=fsync,fdatasync,sync_file_range,syncfs` (only "
            "those calls stop the server), every sync call of the window counted by the file "
            "it synced. etcd's backend (bbolt) commits every 100 ms; kv's (SQLite, "
            "synchronous=NORMAL) syncs only at checkpoints and snapshots. Being traced slows "
            "kv far more than etcd: threads of a ptrace-attached process hand work to each "
            "other several times slower, and kv's server does that on every put (gRPC's "
            "poller thread, the event loop, the fsync thread), so its rate and its group "
            "size under strace are not its usual ones; the own counter's are."
        )
    else:
        lines.append(f"Sync calls were not counted under strace: {results.fsync_note}.")
    if results.restarts:
        lines.append(
            f"Restart: {p['restart_keys']:,} keys of {p['restart_key_size']} bytes with "
            f"{p['restart_value_size']}-byte values, one Put each from {p['processes']} "
            f"processes with {p['restart_clients']} requests in flight; then SIGTERM, and the "
            "server started again on its data directory, polled every "
            f"{restart.POLL_INTERVAL * 1e3:.0f} ms with a linearizable Range (etcd must also "
            "elect itself). RSS is VmRSS from /proc: for etcd it includes the pages of its "
            "memory-mapped backend it has touched (RssFile), for kv the shared libraries "
            "only, since SQLite reads through the page cache. kv/etcd: kv's figure divided by "
            "etcd's. etcd re-raises SIGTERM after its clean shutdown, so its exit status is "
            "the signal's."
        )
    lines += report.failed_requests(results.summaries)
    other = max((s.other_cpu_share for s in results.summaries), default=0.0)
    loading = max((r.load_other_cpu_share for r in results.restarts), default=0.0)
    restarting = max((r.startup_other_cpu_share for r in results.restarts), default=0.0)
    also = [(loading, "while keys were loaded"), (restarting, "during a restart")]
    lines.append(report.noise(other, also if results.restarts else (), results.load_average))
    return [*lines, *notes]


def markdown(
    results: Results,
    env: report.Environment,
    parameters: Mapping[str, object],
    notes: Sequence[str] = (),
) -> str:
    """The tables and the caption as one markdown document (headings from level 4, since the
    performance page includes it under its own)."""
    parts = ["#### Durable puts and gets\n", report.table(results.summaries)]
    if results.own_counts or results.fsync_counts:
        table = fsync_table(results.own_counts, results.fsync_counts)
        parts += ["\n#### fsyncs per write under load\n", table]
    if results.restarts:
        keys = results.restarts[0].keys
        parts += [f"\n#### Restart with {keys:,} keys\n", restart_table(results.restarts)]
    items = "\n".join(f"- {line}" for line in caption(results, env, parameters, notes))
    return "\n".join(parts) + f"\n\n{items}\n"
