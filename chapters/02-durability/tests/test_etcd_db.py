"""kv's backend as etcd's bbolt file and back (``kv/server/disk/etcd_db.py``).

What a snapshot that moves between kv and etcd keeps: every revision (tombstones marked as etcd
marks them), the compaction marks, leases, alarms, members, removed members and the cluster
version. The encodings are checked byte for byte against a real etcd's file in
``tests/compat/test_bbolt_files.py``; here, that the two directions undo each other.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from kv.backend import Backend, BackendError
from kv.bbolt import PAGE_SIZE, BoltFile
from kv.mvcc import Revision, Store
from kv.server.disk.data_dir import DataDir
from kv.server.disk.etcd_db import (
    BUCKETS,
    etcd_buckets,
    load_etcd_db,
    parse_revision_key,
    revision_key,
    summarize,
    write_etcd_db,
)
from kv.server.disk.snapshot_file import RestoreConfig, restore, summarize_snapshot

MEMBER = '{"id":1,"peerURLs":["http://127.0.0.1:2380"],"name":"n1"}'


def filled(path: Path) -> Backend:
    """A backend with every kind of record etcd's file has, compacted at 4."""
    backend = Backend.open(path)
    store = Store(backend.history)
    store.put(b"a", b"1")  # 2
    store.put(b"b", b"2", lease=0x7E57)  # 3
    store.put(b"a", b"3")  # 4
    store.delete_range(b"b")  # 5: a tombstone
    store.put(b"big", b"x" * 20_000)  # 6: overflow pages
    backend.schedule_compaction(4)
    store.compact(4)
    backend.finish_compaction(4)
    backend.put_lease(0x7E57, 60)
    backend.add_alarm(1, "NOSPACE")
    backend.put_member(1, MEMBER)
    backend.remove_member(2)
    backend.set_cluster_version("3.4.0")
    backend.commit(9)
    return backend


def everything(backend: Backend) -> tuple[object, ...]:
    return (
        list(backend.history.items()),
        backend.compact_revision,
        backend.scheduled_compact_revision,
        backend.leases(),
        backend.alarms(),
        backend.members(),
        backend.removed_members(),
        backend.cluster_version(),
    )


def exported(backend: Backend) -> bytes:
    out = io.BytesIO()
    write_etcd_db(backend, out)
    return out.getvalue()


def test_a_backend_written_as_etcds_file_and_loaded_again_is_the_same(tmp_path: Path) -> None:
    with filled(tmp_path / "a") as source, Backend.open(tmp_path / "b") as copy:
        load_etcd_db(BoltFile(exported(source)), copy)
        copy.commit(source.consistent_index)
        assert everything(copy) == everything(source)


def test_the_file_has_etcd_3_4s_buckets_even_when_empty(tmp_path: Path) -> None:
    with Backend.open(tmp_path / "db") as backend:
        names = [name for name, _ in etcd_buckets(backend)]
    assert tuple(names) == BUCKETS


def test_meta_has_compaction_marks_only_after_a_compaction(tmp_path: Path) -> None:
    with Backend.open(tmp_path / "db") as backend:
        meta = BoltFile(exported(backend)).bucket(b"meta")
    assert meta is not None
    assert dict(meta.items()) == {b"consistent_index": bytes(8)}


def test_revision_keys_are_big_endian_so_bytes_sort_as_revisions() -> None:
    revisions = [Revision(1, 0), Revision(1, 300), Revision(256, 0), Revision(2**40, 1)]
    keys = [revision_key(r) for r in revisions]
    assert sorted(keys) == keys
    assert keys[1] == b"\x00" * 7 + b"\x01_" + b"\x00" * 6 + b"\x01\x2c"
    assert parse_revision_key(revision_key(Revision(7, 2), tombstone=True)) == (
        Revision(7, 2),
        True,
    )


def test_a_key_that_is_not_a_revision_is_refused() -> None:
    with pytest.raises(BackendError, match="not a revision key"):
        parse_revision_key(b"consistent_index")


def test_status_counts_every_key_and_reads_the_revision_from_the_last(tmp_path: Path) -> None:
    with filled(tmp_path / "db") as backend:
        data = exported(backend)
        rows = len(backend.history)
    summary = summarize(BoltFile(data))
    assert summary.revision == 6
    # Rows, then meta (3), lease, alarm, member, removed member, cluster version, authRevision.
    assert summary.total_keys == rows + 3 + 6
    assert summary.total_size == len(data)


def test_restore_takes_etcds_file_with_its_sha256(tmp_path: Path) -> None:
    with filled(tmp_path / "source") as source:
        data = exported(source)
        history = list(source.history.items())
    snapshot = tmp_path / "etcd.db"
    snapshot.write_bytes(data + hashlib.sha256(data).digest())
    root = restore(RestoreConfig(snapshot=snapshot, data_dir=str(tmp_path / "restored")))
    with Backend.open(DataDir(root).backend) as restored:
        assert list(restored.history.items()) == history
        assert restored.leases() == [(0x7E57, 60)]
        assert restored.consistent_index == 1  # one member: one bootstrap entry


def test_restore_still_takes_kvs_older_sqlite_snapshots(tmp_path: Path) -> None:
    with filled(tmp_path / "old.db") as source:
        history = list(source.history.items())
    config = RestoreConfig(
        snapshot=tmp_path / "old.db", data_dir=str(tmp_path / "restored"), skip_hash_check=True
    )
    with Backend.open(DataDir(restore(config)).backend) as restored:
        assert list(restored.history.items()) == history


def test_a_torn_etcd_file_fails_the_integrity_check_as_in_etcdctl(tmp_path: Path) -> None:
    with filled(tmp_path / "source") as source:
        data = bytearray(exported(source))
    big = BoltFile(bytes(data)).bucket(b"key")
    assert big is not None and big.root
    data[big.root * PAGE_SIZE + 8 : big.root * PAGE_SIZE + 10] = b"\x40\x00"  # an unknown type
    snapshot = tmp_path / "torn.db"
    snapshot.write_bytes(bytes(data))
    with pytest.raises(BackendError, match=r"^snapshot file integrity check failed\. 1 errors"):
        summarize_snapshot(snapshot)


def test_a_persisted_lease_checkpoint_travels_as_etcds_remaining_ttl(tmp_path: Path) -> None:
    # Chapter 7's --experimental-enable-lease-checkpoint-persist keeps a lease's remaining TTL
    # in its record; etcd 3.4.23 keeps it in leasepb.Lease's RemainingTTL (0: none).
    with filled(tmp_path / "a") as source, Backend.open(tmp_path / "b") as copy:
        source.put_lease(-5, 900)
        source.checkpoint_lease(-5, 321)
        source.commit(source.consistent_index + 1)
        load_etcd_db(BoltFile(exported(source)), copy)
        assert copy.lease_checkpoints() == {-5: 321}
        assert copy.leases() == [(-5, 900), (0x7E57, 60)]
