"""etcd's HashKV: a checksum of the store's history, to compare members (chapter 1).

Members of one cluster apply the same requests, so their stored history must be byte for
byte the same; ``etcdctl endpoint hashkv`` compares a hash of it. etcd computes a CRC-32C
(Castagnoli) over the bucket name ``key`` and then, in revision order, every stored backend
key (the revision bytes, see `Revision.to_bytes`) and value (the protobuf-encoded
``mvccpb.KeyValue``) with a main revision up to the one asked for, leaving out compacted-era
changes that a read at that revision would not return (``mvcc/kvstore.go``, ``HashByRev``).
We compute exactly that, so kv's hash equals the real etcd's for the same requests. The
encoding of a `KeyValue` is the caller's: the API layer owns protobuf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import crc32c

from kv.mvcc.errors import CompactedError, FutureRevisionError
from kv.mvcc.store import KeyValue, Store

KEY_BUCKET = b"key"


@dataclass(frozen=True, slots=True)
class HashResult:
    hash: int
    revision: int  # the store's current revision
    compact_revision: int


def hash_kv(store: Store, revision: int, encode: Callable[[KeyValue], bytes]) -> HashResult:
    """Hash history up to ``revision`` (0: the current revision) as etcd does."""
    current, compacted = store.current_revision, store.compact_revision
    # Unlike a range, hashing at exactly the compaction revision is refused (etcd does so).
    if 0 < revision <= compacted:
        raise CompactedError()
    if revision > current:
        raise FutureRevisionError()
    revision = revision or current
    # Of the changes at or below the compaction revision, etcd hashes only those a read at
    # `revision` could return: its key index's "keep" set at the hashed revision (not at the
    # compaction revision), and all of them if that set is empty.
    keep = store.index.keep(revision)
    checksum = crc32c.crc32c(KEY_BUCKET)
    for stored, entry in store.changes(revision):
        if stored.main <= compacted and keep and stored not in keep:
            continue
        checksum = crc32c.crc32c(stored.to_bytes(tombstone=entry.tombstone), value=checksum)
        checksum = crc32c.crc32c(encode(entry.kv), value=checksum)
    return HashResult(checksum, current, compacted)
