"""The durable write path: log, fsync, apply, answer -- and recovery from what is on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.raftpb import raft_pb2
from kv.api.walpb import record_pb2
from kv.server.data_dir import DataDir, Recovered, open_member
from kv.server.durable_log import SnapshotPolicy

MEMBER, CLUSTER = 0x8E9E05C52164694D, 0xCDF818194E3A8C32


def open_at(root: Path, snapshot_count: int = 100_000) -> Recovered:
    policy = SnapshotPolicy(snapshot_count=snapshot_count)
    return open_member(root, member_id=MEMBER, cluster_id=CLUSTER, policy=policy)


def put(key: bytes, value: bytes) -> InternalRaftRequest:
    return InternalRaftRequest(put=rpc_pb2.PutRequest(key=key, value=value))


def values(recovered: Recovered) -> dict[bytes, bytes]:
    found = recovered.log.machine.store.range(b"\x00", b"\x00").kvs
    return {kv.key: kv.value for kv in found}


async def test_an_answered_write_is_there_after_reopening(tmp_path: Path) -> None:
    member = open_at(tmp_path)
    response = await member.log.propose(put(b"a", b"1"))
    assert isinstance(response, rpc_pb2.PutResponse) and response.header.revision == 2
    member.log.close()
    reopened = open_at(tmp_path)
    assert values(reopened) == {b"a": b"1"}
    assert reopened.log.machine.store.current_revision == 2
    assert reopened.log.last_index == 1


async def test_a_failing_request_is_logged_and_fails_the_same_way_on_replay(
    tmp_path: Path,
) -> None:
    member = open_at(tmp_path)
    missing = InternalRaftRequest(put=rpc_pb2.PutRequest(key=b"a", ignore_value=True))
    failure = await member.log.propose(missing)
    assert str(failure) == "etcdserver: key not found"
    written = await member.log.propose(put(b"b", b"1"))
    assert isinstance(written, rpc_pb2.PutResponse) and written.header.revision == 2
    member.log.close()
    assert values(open_at(tmp_path)) == {b"b": b"1"}


def test_the_ids_of_a_data_dir_win_over_the_flags_on_restart(tmp_path: Path) -> None:
    open_at(tmp_path).log.close()
    again = open_member(tmp_path, member_id=1, cluster_id=2, policy=SnapshotPolicy())
    assert (again.member_id, again.cluster_id) == (MEMBER, CLUSTER)


def test_entries_logged_but_not_applied_are_replayed_on_open(tmp_path: Path) -> None:
    member = open_at(tmp_path)
    # A crash after the fsync and before the backend commit: the entry is only in the log.
    data = put(b"a", b"1").SerializeToString()
    member.log.wal.save([raft_pb2.Entry(Term=1, Index=1, Data=data)])
    member.log.wal.sync()
    member.log.close()
    reopened = open_at(tmp_path)
    assert reopened.replayed == 1
    assert values(reopened) == {b"a": b"1"}
    assert reopened.log.backend.consistent_index == 1


async def test_reopening_twice_applies_nothing_twice(tmp_path: Path) -> None:
    member = open_at(tmp_path)
    for value in (b"1", b"2", b"3"):
        await member.log.propose(put(b"a", value))
    member.log.close()
    first = open_at(tmp_path)
    first.log.close()
    second = open_at(tmp_path)
    assert second.replayed == 0
    (kv,) = second.log.machine.store.range(b"a").kvs
    assert (kv.value, kv.version, kv.mod_revision) == (b"3", 3, 4)


async def test_a_snapshot_every_snapshot_count_entries_writes_a_snap_file(
    tmp_path: Path,
) -> None:
    member = open_at(tmp_path, snapshot_count=5)
    for number in range(12):
        await member.log.propose(put(b"k%d" % number, b"v"))
    assert member.log.snapshot_index == 10
    assert [path.name for path in member.log.snapshotter.files()] == [
        "0000000000000001-0000000000000005.snap",
        "0000000000000001-000000000000000a.snap",
    ]
    member.log.close()
    reopened = open_at(tmp_path, snapshot_count=5)
    assert len(values(reopened)) == 12 and reopened.log.last_index == 12


async def test_a_crash_between_the_log_marker_and_the_snap_file_recovers(
    tmp_path: Path,
) -> None:
    member = open_at(tmp_path)
    for number in range(3):
        await member.log.propose(put(b"k%d" % number, b"v"))
    member.log.backend.sync()
    member.log.wal.save_snapshot(record_pb2.Snapshot(index=3, term=1))  # then the crash
    member.log.close()
    assert not list(DataDir(tmp_path).snap.glob("*.snap"))
    reopened = open_at(tmp_path)
    assert len(values(reopened)) == 3 and reopened.log.last_index == 3


async def test_a_failed_backend_commit_stops_writes_and_restart_recovers(tmp_path: Path) -> None:
    member = open_at(tmp_path)
    await member.log.propose(put(b"a", b"1"))
    backend = member.log.backend
    original_commit = backend.commit

    def full_disk(consistent_index: int) -> None:
        backend.rollback()
        raise OSError(28, "No space left on device")

    backend.commit = full_disk  # type: ignore[method-assign]
    failed = await asyncio.gather(member.log.propose(put(b"b", b"1")), return_exceptions=True)
    assert [str(error) for error in failed] == ["etcdserver: server stopped"]
    backend.commit = original_commit  # type: ignore[method-assign]
    refused = await asyncio.gather(member.log.propose(put(b"c", b"1")), return_exceptions=True)
    assert [str(error) for error in refused] == ["etcdserver: server stopped"]
    member.log.close()
    # b was fsynced in the log before its apply failed: restart replays it. c never was.
    assert values(open_at(tmp_path)) == {b"a": b"1", b"b": b"1"}


async def test_max_snapshots_0_keeps_every_snapshot_file_as_in_etcd(tmp_path: Path) -> None:
    policy = SnapshotPolicy(snapshot_count=1, max_snapshots=0)
    member = open_member(tmp_path, member_id=MEMBER, cluster_id=CLUSTER, policy=policy)
    for number in range(8):
        await member.log.propose(put(b"k%d" % number, b"v"))
    assert len(member.log.snapshotter.files()) == 8


async def test_max_snapshots_keeps_the_newest_files(tmp_path: Path) -> None:
    policy = SnapshotPolicy(snapshot_count=1, max_snapshots=3)
    member = open_member(tmp_path, member_id=MEMBER, cluster_id=CLUSTER, policy=policy)
    for number in range(8):
        await member.log.propose(put(b"k%d" % number, b"v"))
    assert [path.name[-9:] for path in member.log.snapshotter.files()] == [
        "0006.snap",
        "0007.snap",
        "0008.snap",
    ]
