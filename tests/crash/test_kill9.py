"""kill -9 at any moment loses no acknowledged write: a real ``kv serve``, killed mid-stream.

Each cycle runs 16 concurrent writers and a compactor against ``kv serve``, sends SIGKILL after
a number of acknowledged writes drawn from the seed, restarts the server on the same data dir
and checks every acknowledged write, every unanswered one, the revision, the compaction and
the history (`tests.crash.harness` explains the checks); then kills and restarts it once more
and requires HashKV and everything else to be unchanged. The cycles share one data dir, so
later cycles recover from logs and backends that earlier crashes and recoveries left.

The seed is random unless ``KV_CRASH_SEED`` is set; a failure names it. The long runs are
opt-in: ``pytest tests/crash -m slow``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.compat.servers import Server, ServerOptions
from tests.crash.harness import Plan, crash_cycles

#: Cycles in the default run, and in the opt-in soak (``-m slow``).
CYCLES = 4
SOAK_CYCLES = 120
#: The big-value soak: 1 MiB values fill a 64 MB WAL segment every ~60 writes.
BIG_VALUE = 1 << 20
BIG_CYCLES = 8
BIG_KILL_AFTER = (80, 160)  # 8 cycles of at least 80 MiB: at least 10 segments
#: Small enough that a cycle (up to 300 acknowledged writes) crosses several snapshots, so the
#: kill also lands in a snapshot and recovery starts from a snapshot and the log after it.
SNAPSHOT_COUNT = 50


def kv_server(
    tmp_path: Path, snapshot_count: int | None = None, flags: tuple[str, ...] = ()
) -> Server:
    options = ServerOptions(snapshot_count=snapshot_count, extra_flags=flags)
    return Server("kv", tmp_path / "kv", options)


def snapshot_files(server: Server) -> list[Path]:
    return sorted((server.data_dir / "member" / "snap").glob("*.snap"))


async def test_kill9_loses_no_acknowledged_write(tmp_path: Path, crash_seed: int) -> None:
    server = kv_server(tmp_path)
    tally = await crash_cycles(server, seed=crash_seed, plan=Plan(CYCLES))
    print(f"seed {crash_seed}: {tally}")
    assert tally.cycles == CYCLES
    assert not snapshot_files(server), "no snapshot was due at the default --snapshot-count"


async def test_kill9_with_snapshots_loses_no_acknowledged_write(
    tmp_path: Path, crash_seed: int
) -> None:
    server = kv_server(tmp_path, SNAPSHOT_COUNT)
    tally = await crash_cycles(server, seed=crash_seed, plan=Plan(CYCLES))
    print(f"seed {crash_seed}: {tally}")
    assert snapshot_files(server), f"seed {crash_seed}: no snapshot was taken"
    assert "saved snapshot at index" in server.log_path.read_text()


async def test_kill9_with_the_batch_never_due_loses_no_acknowledged_write(
    tmp_path: Path, crash_seed: int
) -> None:
    """No commit from the backend's batch timer: every kill finds the batch open, holding
    every write since the last forced commit (a snapshot's, a compaction's)."""
    server = kv_server(tmp_path, SNAPSHOT_COUNT, flags=("--backend-batch-interval=1h",))
    tally = await crash_cycles(server, seed=crash_seed, plan=Plan(CYCLES))
    print(f"seed {crash_seed}: {tally}")
    assert snapshot_files(server), f"seed {crash_seed}: no snapshot was taken"


@pytest.mark.slow
@pytest.mark.parametrize("snapshot_count", [None, SNAPSHOT_COUNT], ids=["default", "snapshots"])
async def test_kill9_soak(tmp_path: Path, crash_seed: int, snapshot_count: int | None) -> None:
    server = kv_server(tmp_path, snapshot_count)
    tally = await crash_cycles(server, seed=crash_seed, plan=Plan(SOAK_CYCLES))
    print(f"seed {crash_seed}: {tally}")
    assert tally.cycles == SOAK_CYCLES


@pytest.mark.slow
async def test_kill9_across_wal_segment_cuts_and_purges(tmp_path: Path, crash_seed: int) -> None:
    """Large values: the log cuts new segments and snapshots purge old ones, mid-stream.

    kv has no flag for etcd's 64 MB segment size, so it takes ~1 GB of writes for the log to
    outgrow ``--max-wals`` (5) segments and for a snapshot to purge some: the kill then also
    lands while a segment is cut (temp file, fsync, rename) or purged.
    """
    server = kv_server(tmp_path, SNAPSHOT_COUNT)
    plan = Plan(BIG_CYCLES, value_size=BIG_VALUE, kill_after=BIG_KILL_AFTER)
    tally = await crash_cycles(server, seed=crash_seed, plan=plan)
    print(f"seed {crash_seed}: {tally}")
    log = server.log_path.read_text()
    assert "wal: created segment" in log, f"seed {crash_seed}: no segment was cut"
    assert "wal: purged" in log, f"seed {crash_seed}: no segment was purged"
    shutil.rmtree(server.data_dir)  # ~1 GB; pytest keeps the last runs' temp dirs
