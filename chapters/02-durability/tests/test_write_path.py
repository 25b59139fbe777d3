"""The durable write path of `kv serve`: log, fsync, apply, answer -- and recovery from disk.

Each test starts an in-process member (`make_member` of ``../conftest.py``), writes through
the client, stops it as SIGTERM would (or breaks its disk first), and starts it again on the
same data directory. What a restart may read is only what is on disk: the write-ahead log
(`kv.wal`), the snapshot files (`kv.snap`) and the backend (`kv.backend`).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.raftpb import raft_pb2
from kv.api.walpb import record_pb2
from kv.backend import Backend
from kv.client import KVClient
from kv.server.errors import EtcdError
from kv.wal import WAL, wal_dir

MakeMember = Callable[..., Awaitable[Any]]  # the `make_member` fixture of ../conftest.py
Member = Any  # what it returns: ../conftest.py's Member

STOPPED = r"^etcdserver: server stopped$"
SAVED_SNAPSHOT = re.compile(r"saved snapshot at index (\d+)")


async def values(member: Member) -> dict[bytes, bytes]:
    async with member.client() as client:
        response = await client.range(b"\x00", b"\x00")
    return {kv.key: kv.value for kv in response.kvs}


async def put_each(client: KVClient, count: int) -> None:
    for number in range(count):
        await client.put(b"k%d" % number, b"v")


def snap_indexes(member: Member) -> list[int]:
    """The index of each ``.snap`` file, oldest first (names are ``<term>-<index>.snap``)."""
    names = sorted((member.data_dir / "member" / "snap").glob("*.snap"))
    return sorted(int(path.stem.split("-")[1], 16) for path in names)


def saved_snapshots(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The index of every snapshot the member logged it saved, in order."""
    found = (SAVED_SNAPSHOT.search(record.getMessage()) for record in caplog.records)
    return [int(match.group(1)) for match in found if match]


def open_log(data_dir: Path) -> tuple[WAL, tuple[raft_pb2.Entry, ...], raft_pb2.HardState]:
    """The member's write-ahead log, read back as a restart reads it (no snapshot taken)."""
    wal, contents = WAL.open(wal_dir(data_dir))
    return wal, contents.entries, contents.state


async def test_an_answered_write_is_there_after_a_restart(make_member: MakeMember) -> None:
    member = await make_member()
    async with member.client() as client:
        response = await client.put(b"a", b"1")
    assert response.header.revision == 2
    await member.restart()
    assert await values(member) == {b"a": b"1"}
    async with member.client() as client:
        assert (await client.status()).header.revision == 2


async def test_a_failing_request_is_logged_and_fails_the_same_way_on_replay(
    make_member: MakeMember,
) -> None:
    member = await make_member()
    async with member.client() as client:
        with pytest.raises(EtcdError, match="etcdserver: key not found"):
            await client.put(b"a", b"", ignore_value=True)
        written = await client.put(b"b", b"1")
    assert written.header.revision == 2
    await member.restart()
    assert await values(member) == {b"b": b"1"}


async def test_the_ids_of_a_data_dir_win_over_the_flags_on_restart(
    make_member: MakeMember,
) -> None:
    member = await make_member()
    async with member.client() as client:
        before = (await client.status()).header
    member.fields["initial_cluster_token"] = "another-cluster"  # other ids, were it new
    await member.restart()
    async with member.client() as client:
        after = (await client.status()).header
    assert (after.member_id, after.cluster_id) == (before.member_id, before.cluster_id)


async def test_committed_entries_logged_but_not_applied_are_replayed_on_start(
    make_member: MakeMember,
) -> None:
    member = await make_member()
    await member.stop()
    # A crash after the fsync and before the backend commit: the entry is only in the log,
    # committed (the hard state says so) but not applied.
    wal, entries, state = open_log(member.data_dir)
    index = entries[-1].Index + 1
    request = InternalRaftRequest(put=rpc_pb2.PutRequest(key=b"a", value=b"1"))
    entry = raft_pb2.Entry(Term=state.term, Index=index, Data=request.SerializeToString())
    committed = raft_pb2.HardState(term=state.term, vote=state.vote, commit=index)
    wal.save([entry], committed)
    wal.sync()
    wal.close()
    await member.start()
    assert await values(member) == {b"a": b"1"}
    async with member.client() as client:
        assert (await client.status()).raftAppliedIndex >= index


async def test_restarting_twice_applies_nothing_twice(make_member: MakeMember) -> None:
    member = await make_member()
    async with member.client() as client:
        for value in (b"1", b"2", b"3"):
            await client.put(b"a", value)
    await member.restart()
    await member.restart()
    async with member.client() as client:
        kv = await client.get(b"a")
    assert kv is not None and (kv.value, kv.version, kv.mod_revision) == (b"3", 3, 4)


async def test_a_snapshot_is_taken_every_snapshot_count_entries(
    make_member: MakeMember, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    member = await make_member(snapshot_count=5)
    async with member.client() as client:
        await put_each(client, 12)
        applied = (await client.status()).raftAppliedIndex
    indexes = snap_indexes(member)
    assert len(indexes) >= 2 and indexes == saved_snapshots(caplog)[-len(indexes) :]
    assert all(later - earlier >= 5 for earlier, later in itertools.pairwise(indexes))
    assert applied - indexes[-1] < 5  # none overdue
    await member.restart()
    assert len(await values(member)) == 12


async def test_a_crash_between_the_log_marker_and_the_snap_file_recovers(
    make_member: MakeMember,
) -> None:
    member = await make_member()
    async with member.client() as client:
        await put_each(client, 3)
    await member.stop()
    # The snapshot's first step, the marker in the log, then the crash: no .snap file.
    wal, entries, _ = open_log(member.data_dir)
    wal.save_snapshot(record_pb2.Snapshot(index=entries[-1].Index, term=entries[-1].Term))
    wal.close()
    assert not snap_indexes(member)
    await member.start()
    async with member.client() as client:
        await client.put(b"k3", b"v")
    assert len(await values(member)) == 4


async def test_a_failed_backend_commit_stops_writes_and_restart_recovers(
    make_member: MakeMember, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch limit of one write: b's batch is committed in b's own Ready, not on the interval.
    member = await make_member(backend_batch_limit=1)
    async with member.client() as client:
        await client.put(b"a", b"1")
    original_commit = Backend.commit

    def full_disk(backend: Backend, consistent_index: int) -> None:
        backend.rollback()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Backend, "commit", full_disk)
    async with member.client() as client:
        # As in etcd, b is answered once applied, before the batch's commit: it is committed
        # in the fsynced log already, so the answer holds whatever the backend does.
        await client.put(b"b", b"1")
        monkeypatch.setattr(Backend, "commit", original_commit)
        with pytest.raises(EtcdError, match=STOPPED):
            await client.put(b"c", b"1")
    await member.restart()
    # b was fsynced in the log before its batch failed to commit: restart replays it. c was
    # refused before it was logged.
    assert await values(member) == {b"a": b"1", b"b": b"1"}


@pytest.mark.parametrize(
    ("max_snapshots", "kept"),
    [(0, slice(None)), (3, slice(-3, None))],
    ids=["0 keeps every file, as in etcd", "3 keeps the newest three"],
)
async def test_max_snapshots_keeps_the_newest_snapshot_files(
    make_member: MakeMember, caplog: pytest.LogCaptureFixture, max_snapshots: int, kept: slice
) -> None:
    caplog.set_level(logging.INFO)
    member = await make_member(snapshot_count=1, max_snapshots=max_snapshots)
    async with member.client() as client:
        await put_each(client, 8)
    assert len(saved_snapshots(caplog)) >= 8
    assert snap_indexes(member) == saved_snapshots(caplog)[kept]
