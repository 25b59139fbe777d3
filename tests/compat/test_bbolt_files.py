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

import pytest

from kv.api.mvccpb import kv_pb2
from kv.backend import Backend
from kv.bbolt import Bucket, NewBucket, open_file, write
from kv.server.disk.etcd_db import BUCKETS, etcd_buckets, load_etcd_db, summarize
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


def copy_of(bucket: Bucket) -> NewBucket:
    items = bucket.items()
    return NewBucket(((k, copy_of(v) if isinstance(v, Bucket) else v) for k, v in items))


def test_the_reader_walks_etcds_file_in_the_order_etcdctl_status_hashes(
    etcd_snapshot: Path,
) -> None:
    summary = summarize(open_file(etcd_snapshot))
    expected = status(etcd_snapshot)
    assert (summary.hash, summary.total_keys) == (expected["hash"], expected["totalKey"])
    assert (summary.revision, summary.total_size) == (expected["revision"], expected["totalSize"])


def test_etcds_file_passes_the_readers_check(etcd_snapshot: Path) -> None:
    assert open_file(etcd_snapshot).check() == []


def test_etcd_3_4_keeps_these_buckets(etcd_snapshot: Path) -> None:
    assert [name for name, _ in open_file(etcd_snapshot).buckets()] == list(BUCKETS)


def test_the_reader_finds_each_large_value_whole(etcd_snapshot: Path) -> None:
    bucket = open_file(etcd_snapshot).bucket(b"key")
    assert bucket is not None
    found = {}
    for _, value in bucket.items():
        assert isinstance(value, bytes)
        kv = kv_pb2.KeyValue.FromString(value)
        found[kv.key.decode()] = kv.value.decode()
    assert {key: found[key] for key in LARGE_VALUES} == LARGE_VALUES


def as_data(bucket: Bucket | NewBucket) -> list[tuple[bytes, bytes]]:
    items = bucket.items() if isinstance(bucket, Bucket) else bucket.items
    return [(k, v) for k, v in items if isinstance(v, bytes)]


def test_etcds_buckets_through_kvs_backend_come_back_byte_for_byte(
    etcd_snapshot: Path, tmp_path: Path
) -> None:
    """Each bucket read into kv's tables and written out again is the bucket etcd wrote: the
    mapping keeps every key and value, and encodes them exactly as etcd 3.4 does."""
    file = open_file(etcd_snapshot)
    with Backend.open(tmp_path / "db") as backend:
        load_etcd_db(file, backend)
        meta = file.bucket(b"meta")
        assert meta is not None
        backend.commit(int.from_bytes(dict(as_data(meta))[b"consistent_index"], "big"))
        exported = {name: as_data(bucket) for name, bucket in etcd_buckets(backend)}
    original = {name: as_data(bucket) for name, bucket in file.buckets()}
    for name in BUCKETS:
        assert exported[name] == original[name], name.decode()


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
