"""The backend's batch, kept open across Readys (`kv.server.replica.batching`), with real
``kv serve`` processes: a kill -9 with the batch open loses no acknowledged write, a snapshot
never releases the log past what the file holds, and whatever reads the file itself (a clean
stop, ``etcdctl snapshot save``, an idle member's file) finds what was applied.

Most of these run the member with ``--backend-batch-interval=1h``, so no commit comes from the
timer during a test: the batch is open whenever the test looks, and every commit seen was
forced by what needed one. What a test reads of the backend is read from the file through a
connection of its own, which sees the last commit only (as a restart would).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kv.backend import SHA256_SIZE
from kv.bbolt import open_file
from kv.client import KVClient
from kv.server.disk.data_dir import DataDir
from kv.server.disk.etcd_db import summarize
from kv.snap import Snapshotter
from tests.compat.servers import Server, ServerOptions
from tests.crash.harness import FRESH_CONNECTION

#: No commit from the timer within a test: what is committed was forced.
NEVER = "--backend-batch-interval=1h"
WRITES = 23
#: How long an idle member may take to commit, at most (its interval is far shorter).
PATIENCE = 10.0


def kv_server(tmp_path: Path, *flags: str, snapshot_count: int | None = None) -> Server:
    options = ServerOptions(snapshot_count=snapshot_count, extra_flags=flags)
    return Server("kv", tmp_path / "kv", options)


@contextlib.asynccontextmanager
async def client_of(server: Server) -> AsyncIterator[KVClient]:
    async with KVClient(server.endpoint, options=FRESH_CONNECTION) as client:
        yield client


def newest_snapshot_index(server: Server) -> int:
    """The index of the member's newest intact snapshot, 0 if none."""
    snapshot = Snapshotter(DataDir(server.data_dir).snap).load()
    return snapshot.metadata.index if snapshot is not None else 0


async def put_each(server: Server, count: int) -> dict[bytes, int]:
    """``count`` acknowledged puts; each key's revision."""
    async with client_of(server) as client:
        return {
            key: (await client.put(key, b"v" + key)).header.revision
            for key in (f"batch/k{n}".encode() for n in range(count))
        }


async def applied_index(server: Server) -> int:
    async with client_of(server) as client:
        return (await client.status()).raftAppliedIndex


async def assert_all_there(server: Server, revisions: dict[bytes, int]) -> None:
    async with client_of(server) as client:
        for key, revision in revisions.items():
            kv = await client.get(key)
            assert kv is not None, f"{key!r} (revision {revision}) was lost"
            assert (kv.value, kv.mod_revision) == (b"v" + key, revision)


async def test_a_kill_with_the_batch_open_loses_no_acknowledged_write(tmp_path: Path) -> None:
    server = kv_server(tmp_path, NEVER)
    server.start()
    try:
        revisions = await put_each(server, WRITES)
        applied = await applied_index(server)
        server.kill()
        # The scenario: every put was acknowledged, none of them is in the file.
        assert server.backend_committed_index() < applied - WRITES
        server.start()
        await assert_all_there(server, revisions)
    finally:
        server.kill()


async def test_a_snapshot_never_releases_the_log_past_the_backends_commit(
    tmp_path: Path,
) -> None:
    server = kv_server(tmp_path, NEVER, snapshot_count=5)
    server.start()
    try:
        revisions = await put_each(server, WRITES)
        server.kill()
        snapshot = newest_snapshot_index(server)
        assert snapshot > 0, "no snapshot was taken"
        # A snapshot commits the batch before the log before it may go.
        assert snapshot <= server.backend_committed_index()
        server.start()
        await assert_all_there(server, revisions)
    finally:
        server.kill()


async def test_a_clean_stop_commits_the_open_batch(tmp_path: Path) -> None:
    server = kv_server(tmp_path, NEVER)
    server.start()
    try:
        await put_each(server, WRITES)
        applied = await applied_index(server)
        assert server.backend_committed_index() < applied  # open until the stop
        server.stop()
        assert server.process is not None and server.process.returncode == 0, server.log_tail()
        assert server.backend_committed_index() == applied
    finally:
        server.kill()


async def test_an_idle_member_commits_its_batch_within_the_interval(tmp_path: Path) -> None:
    server = kv_server(tmp_path, "--backend-batch-interval=200ms")
    server.start()
    try:
        await put_each(server, WRITES)
        applied = await applied_index(server)
        deadline = time.monotonic() + PATIENCE
        while server.backend_committed_index() < applied and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # a condition polled, not a delay relied on
        assert server.backend_committed_index() == applied
    finally:
        server.kill()


async def test_snapshot_save_holds_the_writes_of_the_open_batch(tmp_path: Path) -> None:
    server = kv_server(tmp_path, NEVER)
    server.start()
    try:
        revisions = await put_each(server, WRITES)
        async with client_of(server) as client:
            data = b"".join([response.blob async for response in client.snapshot()])
        copy = tmp_path / "backup.db"
        copy.write_bytes(data[:-SHA256_SIZE])
        assert summarize(open_file(copy)).revision == max(revisions.values())
    finally:
        server.kill()


@pytest.mark.parametrize("flag", ["--backend-batch-limit=-1", "--backend-batch-interval=-1s"])
def test_a_negative_batch_flag_is_refused(tmp_path: Path, flag: str) -> None:
    server = kv_server(tmp_path, flag)
    server.launch()
    try:
        assert server.process is not None
        assert server.process.wait(timeout=PATIENCE) == 1
        assert "must not be negative" in server.log_tail()
    finally:
        server.kill()
