"""etcd's backend file from kv's backend, and back: which bucket holds what (chapter 2).

kv keeps its applied state in SQLite tables (`kv.backend`); etcd keeps the same state in
bbolt buckets. A snapshot that moves between the two is etcd's file, written and read with
`kv.bbolt`. Each of kv's tables has one etcd bucket, and etcd 3.4 writes them so (etcd:
``mvcc/kvstore.go``, ``lease/lessor.go``, ``etcdserver/api/membership/store.go``,
``etcdserver/api/v3alarm/alarms.go``, ``auth/store.go``):

=================  =====================================  ==================================
bucket             key                                    value
=================  =====================================  ==================================
key                revision: 8 bytes main, ``_``, 8       ``mvccpb.KeyValue``; a tombstone
                   bytes sub (big-endian); ``t`` after    holds only the key
                   it for a tombstone
meta               ``consistent_index``                   8 bytes big-endian
                   ``scheduledCompactRev``,               a revision key (17 bytes), written
                   ``finishedCompactRev``                 once a compaction begins / ends
lease              the lease ID, 8 bytes big-endian       ``leasepb.Lease`` (ID, TTL,
                                                          RemainingTTL: a checkpoint)
members            the member ID in hex                   the member as JSON
members_removed    the member ID in hex                   ``removed``
cluster            ``clusterVersion``                     the version, e.g. ``3.4.0``
alarm              ``etcdserverpb.AlarmMember``           empty
auth               ``authRevision``                       8 bytes big-endian: 1
authRoles,         (empty: kv has no users or roles)
authUsers
=================  =====================================  ==================================

Big-endian revisions make bbolt's byte order the revision order, which is why etcd chose
them: the key bucket is the history, oldest first, and its last key is the current revision.

`summarize` is ``etcdctl snapshot status``'s four columns for such a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import crc32c

from kv.api.etcdserverpb import rpc_pb2
from kv.api.leasepb import lease_pb2
from kv.api.mvccpb import kv_pb2
from kv.backend import Backend, BackendError, FileSummary, checked_snapshot_copy, integrity_error
from kv.bbolt import BoltFile, Bucket, NewBucket, open_file, write
from kv.mvcc.revision import Revision
from kv.mvcc.store import HistoryEntry, KeyValue

KEY, META, LEASE = b"key", b"meta", b"lease"
MEMBERS, MEMBERS_REMOVED, CLUSTER, ALARM = b"members", b"members_removed", b"cluster", b"alarm"
AUTH, AUTH_ROLES, AUTH_USERS = b"auth", b"authRoles", b"authUsers"
#: Every bucket etcd 3.4 creates, in bbolt's (byte) order.
BUCKETS = tuple(
    sorted(
        (KEY, META, LEASE, MEMBERS, MEMBERS_REMOVED, CLUSTER, ALARM, AUTH, AUTH_ROLES, AUTH_USERS)
    )
)
CONSISTENT_INDEX = b"consistent_index"
SCHEDULED_COMPACT = b"scheduledCompactRev"
FINISHED_COMPACT = b"finishedCompactRev"
CLUSTER_VERSION = b"clusterVersion"
AUTH_REVISION = b"authRevision"
#: etcd's auth store commits revision 1 when it first creates its buckets.
INITIAL_AUTH_REVISION = 1
REMOVED = b"removed"
TOMBSTONE_MARK = b"t"


def revision_key(revision: Revision, *, tombstone: bool = False) -> bytes:
    """The key bucket's key for ``revision`` (etcd: ``revToBytes``, ``appendMarkTombstone``)."""
    key = revision.main.to_bytes(8, "big") + b"_" + revision.sub.to_bytes(8, "big")
    return key + TOMBSTONE_MARK if tombstone else key


def parse_revision_key(key: bytes) -> tuple[Revision, bool]:
    """The revision a key bucket key names, and whether it marks a tombstone."""
    if len(key) not in (17, 18) or key[8:9] != b"_":
        raise BackendError(f"not a revision key: {key!r}")
    revision = Revision(int.from_bytes(key[:8], "big"), int.from_bytes(key[9:17], "big"))
    return revision, key[17:] == TOMBSTONE_MARK


def _uint64(value: int) -> bytes:
    return value.to_bytes(8, "big")


# --- kv's backend as etcd's buckets --------------------------------------------------------


# --8<-- [start:key-bucket]
def _key_bucket(backend: Backend) -> Iterator[tuple[bytes, bytes]]:
    for revision, entry in backend.history.items():
        kv = entry.kv
        if entry.tombstone:
            record = kv_pb2.KeyValue(key=kv.key)
        else:
            record = kv_pb2.KeyValue(
                key=kv.key,
                create_revision=kv.create_revision,
                mod_revision=kv.mod_revision,
                version=kv.version,
                value=kv.value,
                lease=kv.lease,
            )
        yield revision_key(revision, tombstone=entry.tombstone), record.SerializeToString()


# --8<-- [end:key-bucket]
def _meta_bucket(backend: Backend) -> list[tuple[bytes, bytes]]:
    items = [(CONSISTENT_INDEX, _uint64(backend.consistent_index))]
    for name, revision in (
        (FINISHED_COMPACT, backend.compact_revision),
        (SCHEDULED_COMPACT, backend.scheduled_compact_revision),
    ):
        if revision >= 0:  # -1: no compaction yet, and etcd writes no key
            items.append((name, revision_key(Revision(revision, 0))))
    return sorted(items)


def etcd_buckets(backend: Backend) -> list[tuple[bytes, NewBucket]]:
    """What ``backend`` has committed, as etcd 3.4's buckets (the table in the docstring)."""
    # A persisted checkpoint (chapter 7, --experimental-enable-lease-checkpoint-persist) is
    # etcd's RemainingTTL; 0 = none, as etcd writes it.
    remaining = backend.lease_checkpoints()
    leases = sorted(
        (
            lease_id.to_bytes(8, "big", signed=True),
            lease_pb2.Lease(ID=lease_id, TTL=ttl, RemainingTTL=remaining.get(lease_id, 0)),
        )
        for lease_id, ttl in backend.leases()
    )
    alarms = sorted(
        rpc_pb2.AlarmMember(memberID=member, alarm=alarm).SerializeToString()
        for member, alarm in backend.alarms()
    )
    version = backend.cluster_version()
    buckets = {
        ALARM: [(alarm, b"") for alarm in alarms],
        AUTH: [(AUTH_REVISION, _uint64(INITIAL_AUTH_REVISION))],
        AUTH_ROLES: [],
        AUTH_USERS: [],
        CLUSTER: [(CLUSTER_VERSION, version.encode())] if version else [],
        KEY: _key_bucket(backend),
        LEASE: [(key, lease.SerializeToString()) for key, lease in leases],
        MEMBERS: sorted((f"{m:x}".encode(), record.encode()) for m, record in backend.members()),
        MEMBERS_REMOVED: sorted((f"{m:x}".encode(), REMOVED) for m in backend.removed_members()),
        META: _meta_bucket(backend),
    }
    return [(name, NewBucket(items)) for name, items in sorted(buckets.items())]


def write_etcd_db(backend: Backend, file: BinaryIO) -> int:
    """Write ``backend``'s state (as its batch sees it) to ``file`` as etcd's bbolt file;
    return its size."""
    return write(file, etcd_buckets(backend))


def save_etcd_db(backend: Backend, target: Path) -> int:
    """Write the last commit of a live ``backend`` to ``target`` as etcd's file (the Snapshot
    RPC); return its size.

    The backend is first copied through a connection of its own (`Backend.snapshot_to`: the
    last commit, never half a batch, with the consistent index that covers it), and the copy
    is what is read: the member goes on applying meanwhile. Blocking: run it in a thread.
    """
    copy = target.with_name(target.name + ".sqlite")
    try:
        backend.snapshot_to(copy)
        with Backend.open(copy) as committed, target.open("wb") as out:
            size = write_etcd_db(committed, out)
            out.flush()
        return size
    finally:
        for suffix in ("", ".part", "-wal", "-shm"):
            copy.with_name(copy.name + suffix).unlink(missing_ok=True)


# --- etcd's buckets into kv's backend ------------------------------------------------------


def _values(file: BoltFile, name: bytes) -> Iterator[tuple[bytes, bytes]]:
    bucket = file.bucket(name)
    for key, value in bucket.items() if bucket is not None else ():
        if isinstance(value, Bucket):
            raise BackendError(f"bucket {name.decode()}: {key!r} is a bucket, not a value")
        yield key, value


def load_etcd_db(file: BoltFile, backend: Backend) -> None:
    """Write etcd's buckets from ``file`` into ``backend``'s batch (the caller commits).

    The consistent index is not copied: it is an index in the old member's log (a restore
    sets its own, `kv.server.disk.snapshot_file`). Unknown buckets are ignored, as etcd
    ignores them.
    """
    for key, value in _values(file, KEY):
        revision, tombstone = parse_revision_key(key)
        record = kv_pb2.KeyValue.FromString(value)
        kv = KeyValue(
            record.key,
            record.value,
            record.create_revision,
            record.mod_revision,
            record.version,
            record.lease,
        )
        backend.history[revision] = HistoryEntry(kv, tombstone)
    meta = dict(_values(file, META))
    for name, record_compaction in (
        (SCHEDULED_COMPACT, backend.schedule_compaction),
        (FINISHED_COMPACT, backend.finish_compaction),
    ):
        if name in meta:
            record_compaction(parse_revision_key(meta[name])[0].main)
    for _, value in _values(file, LEASE):
        lease = lease_pb2.Lease.FromString(value)
        backend.put_lease(lease.ID, lease.TTL)
        if lease.RemainingTTL:
            backend.checkpoint_lease(lease.ID, lease.RemainingTTL)
    for key, _ in _values(file, ALARM):
        alarm = rpc_pb2.AlarmMember.FromString(key)
        backend.add_alarm(alarm.memberID, rpc_pb2.AlarmType.Name(alarm.alarm))
    for key, value in _values(file, MEMBERS):
        backend.put_member(int(key, 16), value.decode())
    for key, _ in _values(file, MEMBERS_REMOVED):
        backend.remove_member(int(key, 16))
    version = dict(_values(file, CLUSTER)).get(CLUSTER_VERSION)
    if version:
        backend.set_cluster_version(version.decode())


def restore_etcd_db(
    snapshot: Path, path: Path, *, consistent_index: int, skip_hash_check: bool = False
) -> Backend:
    """Create kv's backend at ``path`` from etcd's snapshot file (``kv snapshot restore``).

    The hash is checked (`kv.backend.checked_snapshot_copy`); the file must then pass bbolt's
    check before anything of it is loaded.

    Raises:
        kv.backend.SnapshotHashError: the hash is missing or wrong (etcd's messages).
        kv.backend.BackendError: ``path`` exists, or the file is not a consistent bbolt file.
    """
    data = checked_snapshot_copy(snapshot, path, skip_hash_check=skip_hash_check)
    try:
        file = open_file(data)
        _require_consistent(file)
        backend = Backend.open(path)
        try:
            load_etcd_db(file, backend)
            backend.commit(consistent_index)
            backend.sync()
        except BaseException:
            backend.close()
            path.unlink(missing_ok=True)
            raise
    finally:
        data.unlink(missing_ok=True)
    return backend


def _require_consistent(file: BoltFile) -> None:
    problems = file.check()
    if problems:
        raise integrity_error(problems)


def summarize(file: BoltFile) -> FileSummary:
    """``etcdctl snapshot status`` of an etcd file (``clientv3/snapshot/v3_snapshot.go``).

    The hash is a CRC-32C (Castagnoli) over each bucket's name, then each of its keys and
    values, in bbolt's order; the revision is the main revision of the key bucket's last key;
    the total keys count every bucket's keys; the size is bbolt's ``tx.Size()``.

    Raises:
        kv.backend.BackendError: the file fails bbolt's check (etcdctl's message).
    """
    _require_consistent(file)
    crc, revision, total_keys = 0, 0, 0
    for name, bucket in file.buckets():
        crc = crc32c.crc32c(name, crc)
        for key, value in bucket.items():
            # A sub-bucket's value is nil to bbolt's ForEach (etcd nests none).
            crc = crc32c.crc32c(value if isinstance(value, bytes) else b"", crc32c.crc32c(key, crc))
            if name == KEY:
                revision = parse_revision_key(key)[0].main
            total_keys += 1
    return FileSummary(crc, revision, total_keys, file.size)
