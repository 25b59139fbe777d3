"""`kv.bbolt` against the real thing: files the real etcd 3.4 wrote, and etcdctl reading kv's.

One real etcd is filled (`tests.compat.snapshots.fill`) and saved with ``etcdctl snapshot
save``. The reader must walk that file exactly as bbolt does: ``etcdctl snapshot status``'s
hash is a CRC-32C over every bucket name, key and value in cursor order, so equal hashes mean
the same walk. The writer must write a file that etcd takes for its own: the etcd file's
buckets written again by `kv.bbolt.write` must give the same status, and ``etcdctl snapshot
restore`` of it must make a data dir from which etcd serves the same keys and leases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import crc32c
import pytest

from kv.api.mvccpb import kv_pb2
from kv.bbolt import BoltFile, Bucket, NewBucket, open_file, write
from tests.compat.servers import Server
from tests.compat.snapshots import (
    LARGE_VALUES,
    contents,
    fill,
    restore_with_etcdctl,
    save,
    status,
)

pytestmark = pytest.mark.etcd

#: The buckets etcd 3.4 keeps in its backend (mvcc, lease, membership, alarms, auth).
ETCD_3_4_BUCKETS = [
    b"alarm",
    b"auth",
    b"authRoles",
    b"authUsers",
    b"cluster",
    b"key",
    b"lease",
    b"members",
    b"members_removed",
    b"meta",
]


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server("etcd", tmp_path_factory.mktemp("etcd"))
    server.start()
    try:
        fill(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def etcd_snapshot(etcd: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(etcd, tmp_path_factory.mktemp("saved") / "etcd.db")


def walk_hash(file: BoltFile) -> tuple[int, int]:
    """CRC-32C over bucket names, keys and values in the reader's order, and the key count."""
    crc, keys = 0, 0
    for name, bucket in file.buckets():
        crc = crc32c.crc32c(name, crc)
        for key, value in bucket.items():
            assert isinstance(value, bytes), "etcd nests no buckets"
            crc = crc32c.crc32c(value, crc32c.crc32c(key, crc))
            keys += 1
    return crc, keys


def copy_of(bucket: Bucket) -> NewBucket:
    items = bucket.items()
    return NewBucket(((k, copy_of(v) if isinstance(v, Bucket) else v) for k, v in items))


def test_the_reader_walks_etcds_file_in_the_order_etcdctl_status_hashes(
    etcd_snapshot: Path,
) -> None:
    file = open_file(etcd_snapshot)
    expected = status(etcd_snapshot)
    assert walk_hash(file) == (expected["hash"], expected["totalKey"])
    assert file.size == expected["totalSize"]


def test_etcds_file_passes_the_readers_check(etcd_snapshot: Path) -> None:
    assert open_file(etcd_snapshot).check() == []


def test_etcd_3_4_keeps_these_buckets(etcd_snapshot: Path) -> None:
    assert [name for name, _ in open_file(etcd_snapshot).buckets()] == ETCD_3_4_BUCKETS


def test_the_reader_finds_each_large_value_whole(etcd_snapshot: Path) -> None:
    bucket = open_file(etcd_snapshot).bucket(b"key")
    assert bucket is not None
    found = {}
    for _, value in bucket.items():
        assert isinstance(value, bytes)
        kv = kv_pb2.KeyValue.FromString(value)
        found[kv.key.decode()] = kv.value.decode()
    assert {key: found[key] for key in LARGE_VALUES} == LARGE_VALUES


def rewrite(source: Path, target: Path) -> Path:
    """Write ``source``'s buckets into a new file with `kv.bbolt.write`, plus the SHA-256."""
    with target.open("w+b") as out:
        write(out, ((name, copy_of(b)) for name, b in open_file(source).buckets()))
        out.seek(0)
        digest = hashlib.sha256(out.read()).digest()
        out.write(digest)
    return target


def test_etcdctl_status_reads_the_writers_file_as_the_original(
    etcd_snapshot: Path, tmp_path: Path
) -> None:
    written = rewrite(etcd_snapshot, tmp_path / "rewritten.db")
    original, rewritten = status(etcd_snapshot), status(written)
    # The size may differ: etcd's file has free pages, the writer's has none.
    assert {**rewritten, "totalSize": 0} == {**original, "totalSize": 0}


def test_etcd_restored_from_the_writers_file_serves_every_key_and_lease(
    etcd: Server, etcd_snapshot: Path, tmp_path: Path
) -> None:
    written = rewrite(etcd_snapshot, tmp_path / "rewritten.db")
    restored = Server("etcd", tmp_path / "restored")
    restore_with_etcdctl(written, restored)
    restored.start()
    try:
        assert contents(restored) == contents(etcd)
    finally:
        restored.stop()
