"""Maintenance, through the client: the space quota and its alarm, defragment, snapshots.

Each test starts an in-process member (`make_member` of ``../conftest.py``, or the root
``conftest.py``'s `client`) and checks one behaviour of etcd 3.4 that ``etcdctl alarm``,
``etcdctl defrag``, ``etcdctl snapshot save`` and ``kv snapshot status|restore`` rely on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.backend import SnapshotHashError
from kv.cli import main
from kv.client import KVClient
from kv.membership import cluster_id, member_id
from kv.server.disk.snapshot_file import RestoreConfig, RestoreError, human_bytes, restore
from kv.server.errors import EtcdError

MakeMember = Callable[..., Awaitable[Any]]  # the `make_member` fixture of ../conftest.py

NOSPACE = rpc_pb2.AlarmType.NOSPACE
CORRUPT = rpc_pb2.AlarmType.CORRUPT
ACTIVATE = rpc_pb2.AlarmRequest.ACTIVATE
DEACTIVATE = rpc_pb2.AlarmRequest.DEACTIVATE
NO_SPACE_ERROR = (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
#: A quota a fresh member (about 20 kB) passes, and a few 10 kB values exceed.
QUOTA = 100_000
VALUE = b"x" * 10_000


async def fill(client: KVClient, limit: int = 100) -> EtcdError:
    """Put 10 kB values until a put fails; return its error."""
    for n in range(limit):
        try:
            await client.put(f"k{n:03}", VALUE)
        except EtcdError as error:
            return error
    raise AssertionError(f"{limit} puts of 10 kB did not exceed the quota")


def outcome(error: EtcdError) -> tuple[grpc.StatusCode, str]:
    return error.code, error.message


async def revision(client: KVClient) -> int:
    return (await client.status()).header.revision


async def save_snapshot(client: KVClient, path: Path) -> list[rpc_pb2.SnapshotResponse]:
    """What ``etcdctl snapshot save`` does: write every blob of the stream, in order."""
    messages = [message async for message in client.snapshot()]
    path.write_bytes(b"".join(message.blob for message in messages))
    return messages


# --- the quota and the NOSPACE alarm ----------------------------------------------------------


async def test_a_put_past_the_quota_is_refused_with_etcds_nospace_error(
    make_member: MakeMember,
) -> None:
    member = await make_member(quota_backend_bytes=QUOTA)
    async with member.client() as client:
        error = await fill(client)
        before = await revision(client)
        with pytest.raises(EtcdError) as again:
            await client.put("another", VALUE)
        assert outcome(error) == outcome(again.value) == NO_SPACE_ERROR
        assert await revision(client) == before  # nothing was written


async def test_exceeding_the_quota_raises_the_nospace_alarm_of_the_member(
    make_member: MakeMember,
) -> None:
    member = await make_member(quota_backend_bytes=QUOTA)
    async with member.client() as client:
        await fill(client)
        me = (await client.status()).header.member_id
        alarms = (await client.alarm_list()).alarms
        assert [(alarm.memberID, alarm.alarm) for alarm in alarms] == [(me, NOSPACE)]
        assert list((await client.status()).errors) == [f"memberID:{me} alarm:NOSPACE "]


async def test_the_quota_is_checked_before_the_request_is_validated(
    make_member: MakeMember,
) -> None:
    """etcd's quota check wraps the KV service, so it answers before the empty key check."""
    member = await make_member(quota_backend_bytes=1_000)  # below even a fresh member
    async with member.client() as client:
        with pytest.raises(EtcdError) as refused:
            await client.put("", "v")
    assert outcome(refused.value) == NO_SPACE_ERROR


async def test_while_nospace_is_raised_puts_are_refused_even_with_room(client: KVClient) -> None:
    await client.alarm(ACTIVATE, member_id=5, alarm=NOSPACE)
    with pytest.raises(EtcdError) as refused:
        await client.put("k", "v")
    assert outcome(refused.value) == NO_SPACE_ERROR
    assert await revision(client) == 1


async def test_reads_deletes_and_compaction_work_while_nospace_is_raised(
    make_member: MakeMember,
) -> None:
    member = await make_member(quota_backend_bytes=QUOTA)
    async with member.client() as client:
        await fill(client)
        assert (await client.get("k000")) is not None
        assert (await client.delete_range("k000")).deleted == 1
        current = await revision(client)
        assert (await client.compact(current)).header.revision == current
        assert (await client.range("k", "l", count_only=True)).count > 0


async def test_the_nospace_alarm_survives_a_restart(make_member: MakeMember) -> None:
    member = await make_member(quota_backend_bytes=QUOTA)
    async with member.client() as client:
        await fill(client)
    # Without a quota to exceed, only the stored alarm can refuse the put.
    member.fields["quota_backend_bytes"] = 0
    await member.restart()
    async with member.client() as client:
        assert [alarm.alarm for alarm in (await client.alarm_list()).alarms] == [NOSPACE]
        with pytest.raises(EtcdError) as refused:
            await client.put("k", "v")
    assert outcome(refused.value) == NO_SPACE_ERROR


async def test_disarm_compact_and_defragment_let_puts_succeed_again(
    make_member: MakeMember,
) -> None:
    member = await make_member(quota_backend_bytes=QUOTA)
    async with member.client() as client:
        await fill(client)
        deleted = await client.delete_range("k", "l")
        await client.compact(deleted.header.revision)
        await client.defragment()
        disarmed = await client.alarm_disarm()
        assert [alarm.alarm for alarm in disarmed.alarms] == [NOSPACE]
        assert (await client.put("k", "v")).header.revision == deleted.header.revision + 1
        assert list((await client.alarm_list()).alarms) == []
        assert list((await client.status()).errors) == []


async def test_disarm_without_freeing_space_raises_nospace_at_the_next_put(
    make_member: MakeMember,
) -> None:
    member = await make_member(quota_backend_bytes=QUOTA)
    async with member.client() as client:
        await fill(client)
        await client.alarm_disarm()
        assert list((await client.alarm_list()).alarms) == []
        with pytest.raises(EtcdError):
            await client.put("k", VALUE)
        assert [alarm.alarm for alarm in (await client.alarm_list()).alarms] == [NOSPACE]


async def test_activate_answers_with_the_alarm_even_if_it_was_raised_before(
    client: KVClient,
) -> None:
    for _ in range(2):
        response = await client.alarm(ACTIVATE, member_id=5, alarm=NOSPACE)
        assert [(a.memberID, a.alarm) for a in response.alarms] == [(5, NOSPACE)]
    assert len((await client.alarm_list()).alarms) == 1


async def test_deactivate_answers_with_the_cleared_alarm_or_with_nothing(
    client: KVClient,
) -> None:
    await client.alarm(ACTIVATE, member_id=5, alarm=NOSPACE)
    missing = await client.alarm(DEACTIVATE, member_id=6, alarm=NOSPACE)
    cleared = await client.alarm(DEACTIVATE, member_id=5, alarm=NOSPACE)
    assert list(missing.alarms) == []
    assert [(a.memberID, a.alarm) for a in cleared.alarms] == [(5, NOSPACE)]


async def test_alarm_answers_carry_no_header(client: KVClient) -> None:
    """etcd 3.4 sends its AlarmResponse without a header, whatever the action."""
    for action in (rpc_pb2.AlarmRequest.GET, ACTIVATE, DEACTIVATE):
        response = await client.alarm(action, member_id=5, alarm=NOSPACE)
        assert not response.HasField("header")


async def test_every_alarm_action_goes_through_the_log(client: KVClient) -> None:
    """etcd 3.4 logs even a GET: the raft index moves by one per alarm request."""
    before = (await client.status()).raftIndex
    await client.alarm_list()
    await client.alarm(ACTIVATE, member_id=5, alarm=NOSPACE)
    assert (await client.status()).raftIndex == before + 2


async def test_an_unknown_alarm_action_is_refused_before_it_reaches_the_log(
    client: KVClient,
) -> None:
    """etcd 3.4 crashes applying such a request; kv refuses it."""
    before = (await client.status()).raftIndex
    with pytest.raises(EtcdError) as refused:
        await client.alarm(7, alarm=NOSPACE)  # type: ignore[arg-type]
    assert outcome(refused.value) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "kv: unknown alarm action 7",
    )
    assert (await client.status()).raftIndex == before


async def test_a_corrupt_alarm_refuses_every_write_but_not_reads(client: KVClient) -> None:
    await client.put("k", "v")
    await client.alarm(ACTIVATE, member_id=5, alarm=CORRUPT)
    corrupt = (grpc.StatusCode.DATA_LOSS, "etcdserver: corrupt cluster")
    for write in (client.put("k", "w"), client.delete_range("k"), client.compact(2)):
        with pytest.raises(EtcdError) as refused:
            await write
        assert outcome(refused.value) == corrupt
    kv = await client.get("k")
    assert kv is not None and kv.value == b"v"


# --- defragment -------------------------------------------------------------------------------


async def test_compaction_frees_pages_that_db_size_still_counts(client: KVClient) -> None:
    for n in range(20):
        await client.put(f"k{n}", VALUE)
    deleted = await client.delete_range("k", "l")
    await client.compact(deleted.header.revision)
    status = await client.status()
    assert status.dbSizeInUse < status.dbSize


async def test_defragment_after_compaction_shrinks_the_database(client: KVClient) -> None:
    for n in range(20):
        await client.put(f"k{n}", VALUE)
    deleted = await client.delete_range("k", "l")
    await client.compact(deleted.header.revision)
    before = await client.status()
    response = await client.defragment()
    after = await client.status()
    assert not response.HasField("header")  # etcd 3.4 sends none
    assert after.dbSize < before.dbSize
    assert after.dbSize == after.dbSizeInUse == before.dbSizeInUse


async def test_defragment_keeps_every_key_and_revision(client: KVClient) -> None:
    for n in range(10):
        await client.put(f"k{n}", f"v{n}")
    await client.delete_range("k5")
    before = await client.range("\0", "\0")
    hashed = await client.hash_kv()
    await client.defragment()
    after = await client.range("\0", "\0")
    assert list(after.kvs) == list(before.kvs)
    assert (await client.hash_kv()).hash == hashed.hash


async def test_defragment_commits_the_open_batch_first(make_member: MakeMember) -> None:
    # An interval of an hour: the puts' batch is still open when the defragment comes.
    member = await make_member(backend_batch_interval=3600.0)
    async with member.client() as client:
        for n in range(10):
            await client.put(f"k{n}", f"v{n}")
        before = await client.range("\0", "\0")
        await client.defragment()
        after = await client.range("\0", "\0")
        status = await client.status()
    assert list(after.kvs) == list(before.kvs)
    assert status.dbSize == status.dbSizeInUse  # measured by the commit after the rebuild


async def test_hash_sees_the_open_batch(make_member: MakeMember) -> None:
    """Hash reads the batch's own connection: a write counts before its batch is committed."""
    member = await make_member(backend_batch_interval=3600.0)
    async with member.client() as client:
        first = await client.hash()
        await client.put("k", "v")
        after = await client.hash()
    assert first.hash != after.hash


async def test_hash_covers_the_backend_and_changes_with_each_write(client: KVClient) -> None:
    """etcd's Maintenance.Hash: a checksum of the whole backend, at the current revision."""
    first, again = await client.hash(), await client.hash()
    await client.put("k", "v")
    after = await client.hash()
    assert first.hash == again.hash != after.hash
    assert (first.header.revision, after.header.revision) == (1, 2)


# --- the Snapshot stream ------------------------------------------------------------------


async def test_snapshot_stream_is_32k_blobs_then_the_sha256_of_them(
    client: KVClient, tmp_path: Path
) -> None:
    for n in range(20):
        await client.put(f"k{n}", VALUE)
    messages = await save_snapshot(client, tmp_path / "snapshot.db")
    *data, final = messages
    blobs = [message.blob for message in data]
    size = sum(map(len, blobs))
    assert len(data) >= 2 and all(len(blob) == 32 * 1024 for blob in blobs[:-1])
    # remaining_bytes: what is still to come after this blob; 0 on the last blob of data.
    sent = 0
    for message in data:
        sent += len(message.blob)
        assert message.remaining_bytes == size - sent
    assert final.remaining_bytes == 0 and final.blob == hashlib.sha256(b"".join(blobs)).digest()
    assert not any(message.HasField("header") for message in messages)


async def test_a_saved_snapshot_has_the_size_etcdctl_checks(
    client: KVClient, tmp_path: Path
) -> None:
    """``etcdctl snapshot save`` refuses a file whose size is not whole pages + 32 bytes."""
    await client.put("k", "v")
    await save_snapshot(client, tmp_path / "snapshot.db")
    assert (tmp_path / "snapshot.db").stat().st_size % 512 == 32


async def test_a_snapshot_leaves_no_copy_in_the_data_dir(make_member: MakeMember) -> None:
    member = await make_member()
    async with member.client() as client:
        await client.put("k", "v")
        async for _ in client.snapshot():
            break  # the client goes away mid-stream
        async for _ in client.snapshot():
            pass
        await client.put("k", "w")  # the member is still fine
    snap = member.data_dir / "member" / "snap"
    assert sorted(path.name for path in snap.glob("db-snapshot-*")) == []


# --- restore ----------------------------------------------------------------------------------


async def written_member(make_member: MakeMember, snapshot: Path) -> dict[str, object]:
    """A member with history and a compaction; save a snapshot; what a restore must keep."""
    member = await make_member()
    async with member.client() as client:
        for n in range(30):
            await client.put(f"k{n % 7}", f"v{n}")
        await client.delete_range("k3")
        await client.compact(10)
        await save_snapshot(client, snapshot)
        return {
            "kvs": list((await client.range("\0", "\0")).kvs),
            "revision": await revision(client),
            "hash_kv": (await client.hash_kv()).hash,
            "compact_revision": (await client.hash_kv()).compact_revision,
        }


async def test_restore_round_trip_keeps_keys_revisions_and_hash_kv(
    make_member: MakeMember, start_server: object, tmp_path: Path
) -> None:
    snapshot = tmp_path / "snapshot.db"
    before = await written_member(make_member, snapshot)
    data_dir = restore(RestoreConfig(snapshot=snapshot, data_dir=str(tmp_path / "restored")))
    endpoint = await start_server(data_dir=str(data_dir))  # type: ignore[operator]
    async with KVClient(endpoint) as client:
        hashed = await client.hash_kv()
        assert list((await client.range("\0", "\0")).kvs) == before["kvs"]
        assert await revision(client) == before["revision"]
        assert (hashed.hash, hashed.compact_revision) == (
            before["hash_kv"],
            before["compact_revision"],
        )


async def test_a_restored_member_is_a_new_member_that_writes_at_the_next_revision(
    make_member: MakeMember, start_server: object, tmp_path: Path
) -> None:
    snapshot = tmp_path / "snapshot.db"
    before = await written_member(make_member, snapshot)
    data_dir = restore(
        RestoreConfig(
            snapshot=snapshot,
            data_dir=str(tmp_path / "restored"),
            name="m1",
            initial_cluster="m1=http://127.0.0.1:2380",
            initial_advertise_peer_urls=("http://127.0.0.1:2380",),
            initial_cluster_token="restored",
        )
    )
    endpoint = await start_server(  # type: ignore[operator]
        data_dir=str(data_dir),
        name="m1",
        initial_cluster="m1=http://127.0.0.1:2380",
        initial_advertise_peer_urls=("http://127.0.0.1:2380",),
    )
    async with KVClient(endpoint) as client:
        put = await client.put("new", "1")
    assert put.header.revision == before["revision"] + 1  # type: ignore[operator]
    # The ids are the restore's: the token "restored" is part of them.
    new_member = member_id(["http://127.0.0.1:2380"], "restored")
    assert (put.header.member_id, put.header.cluster_id) == (
        new_member,
        cluster_id([new_member]),
    )


def test_restore_refuses_an_existing_data_dir_with_etcds_message(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    config = RestoreConfig(snapshot=tmp_path / "any.db", data_dir=str(tmp_path / "taken"))
    with pytest.raises(RestoreError, match=f'^data-dir "{tmp_path}/taken" exists$'):
        restore(config)


async def test_a_restore_that_fails_its_hash_check_leaves_no_directory(
    client: KVClient, tmp_path: Path
) -> None:
    snapshot = tmp_path / "snapshot.db"
    await save_snapshot(client, snapshot)
    data = bytearray(snapshot.read_bytes())
    data[100] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    target = tmp_path / "restored"
    with pytest.raises(SnapshotHashError, match=r"^expected sha256 "):
        restore(RestoreConfig(snapshot=snapshot, data_dir=str(target)))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snapshot.db"]


# --- kv snapshot status --------------------------------------------------------------------


async def test_kv_snapshot_status_prints_etcdctls_columns(
    client: KVClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(5):
        await client.put(f"k{n}", "v")
    snapshot = tmp_path / "snapshot.db"
    await save_snapshot(client, snapshot)
    assert main(["snapshot", "status", str(snapshot), "-w", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    size = snapshot.stat().st_size - 32
    # etcd's buckets: 5 revisions in key, consistent_index in meta, 1 member and the cluster
    # version (chapter 5: both are applied state), auth's revision; the highest revision
    # stored; the database without the hash.
    assert (status["revision"], status["totalKey"], status["totalSize"]) == (6, 9, size)
    assert main(["snapshot", "status", str(snapshot), "-w", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    digest, shown_size = f"{status['hash']:x}", human_bytes(size)
    assert [line.split("|")[2:-1] for line in table[1:4:2]] == [
        [" REVISION ", " TOTAL KEYS ", " TOTAL SIZE "],
        ["        6 ", "          9 ", f" {shown_size:>10} "],
    ]
    assert table[3].split("|")[1] == f" {digest:>{max(4, len(digest))}} "
    assert main(["snapshot", "status", str(snapshot)]) == 0
    assert capsys.readouterr().out == f"{digest}, 6, 9, {shown_size}\n"


def test_kv_snapshot_status_of_a_missing_file_is_etcdctls_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.db"
    assert main(["snapshot", "status", str(missing)]) == 1
    assert capsys.readouterr().err == f"Error: stat {missing}: no such file or directory\n"
