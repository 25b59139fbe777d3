"""A line of keys under a prefix, ordered by create revision: what locks and elections share
(chapter 9).

Each session that wants the lock (or the leadership) named ``name`` writes one key,
``name/<its lease id in hex>``, attached to its lease. The store gives every write a revision
and keeps it as the key's *create revision*, so the keys under the prefix stand in a line in
the order they were written: the first is the holder (the leader), the others wait. Nothing
else is needed to agree on the order: Raft has already put every write in one order
(chapters 3-4), and every member answers the same.

A waiter does not watch the holder: when it goes, every waiter would wake at once to find that
only one of them is next (the "herd effect"). It watches the key just before its own, and when
that one is deleted it looks again: the deleted key may have left the line early (a waiter
that gave up, a session that expired) while the holder is still there. This is etcd's
``waitDeletes`` (clientv3/concurrency/key.go).

The watch starts at the revision of the read that found the key, so a deletion that happens
between the read and the watch is not missed (chapter 8: a watch from a past revision replays
the history since then).
"""

from __future__ import annotations

from typing import Any

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from kv.client import Bytes, KVClient, prefix_end, range_op
from kv.recipes.errors import LostWatchError

# A range over the prefix that returns only the first (or last) key by create revision.
_FIRST_CREATED: dict[str, Any] = {
    "sort_target": rpc_pb2.RangeRequest.CREATE,
    "sort_order": rpc_pb2.RangeRequest.ASCEND,
    "limit": 1,
}
_LAST_CREATED: dict[str, Any] = {**_FIRST_CREATED, "sort_order": rpc_pb2.RangeRequest.DESCEND}


def line_of(name: Bytes) -> bytes:
    """The prefix of the line named ``name``: ``name/``."""
    return (name.encode() if isinstance(name, str) else name) + b"/"


def place_in_line(prefix: bytes, lease_id: int) -> bytes:
    """A session's key in the line: ``<prefix><lease id in lower-case hex>`` (etcd's ``%x``).

    One key per session and line: a session that asks again finds its own key already there.
    """
    return prefix + f"{lease_id:x}".encode()


def first_in_line_op(prefix: bytes) -> rpc_pb2.RequestOp:
    """A txn's range of the first key in the line (at most one key)."""
    return range_op(prefix, prefix_end(prefix), **_FIRST_CREATED)


async def first_in_line(client: KVClient, prefix: bytes) -> rpc_pb2.RangeResponse:
    """A range of the first key in the line: the holder or leader, if there is one."""
    return await client.range(prefix, prefix_end(prefix), **_FIRST_CREATED)


# --8<-- [start:wait]
async def wait_for_turn(client: KVClient, prefix: bytes, revision: int) -> rpc_pb2.ResponseHeader:
    """Wait until no key in the line was created before ``revision`` (the waiter's own key).

    Returns the header of the read that found the line clear: the revision at which the
    waiter became first.

    Raises:
        LostWatchError: a watch ended before its key was deleted.
        EtcdError: a read or a watch failed (the member is down, cut off, ...).
    """
    while True:
        before = await client.range(
            prefix, prefix_end(prefix), max_create_revision=revision - 1, **_LAST_CREATED
        )
        if not before.kvs:
            return before.header
        await wait_for_delete(client, before.kvs[0].key, before.header.revision)


async def wait_for_delete(client: KVClient, key: bytes, revision: int) -> None:
    """Wait for the deletion of ``key``, seen alive at ``revision``, watching from there."""
    watch = client.watch(key, start_revision=revision)
    try:
        async for reply in watch:
            if any(event.type == kv_pb2.Event.DELETE for event in reply.events):
                return
    finally:
        watch.close()
    raise LostWatchError()  # canceled by the server: compacted past ``revision``


# --8<-- [end:wait]
