"""`KVClient.watch`, the client's side of the Watch stream: against a kv member in-process
and against the real etcd 3.4 (``-m etcd``), the same assertions.

A watch yields the ``created`` reply first, then each write as etcd sends it; it starts where
asked (a past revision is replayed); ``prev_kv`` brings the key as it was; ``cancel`` ends the
iteration with a ``canceled`` reply; a start below the compaction ends it with the compaction
revision.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from kv.client import KVClient, Watch, prefix_end
from tests.compat.servers import Server

TIMEOUT = 10.0
PUT, DELETE = kv_pb2.Event.PUT, kv_pb2.Event.DELETE


@pytest.fixture(params=["kv", pytest.param("etcd", marks=pytest.mark.etcd)])
async def client(
    request: pytest.FixtureRequest, start_server: Any, tmp_path: Path
) -> AsyncIterator[KVClient]:
    """A client of a kv member (in-process), or of the real etcd (the same wire)."""
    etcd = Server("etcd", tmp_path / "etcd") if request.param == "etcd" else None
    if etcd is not None:
        await asyncio.to_thread(etcd.start)
    endpoint = etcd.endpoint if etcd is not None else await start_server()
    try:
        async with KVClient(endpoint) as connected:
            yield connected
    finally:
        if etcd is not None:
            await asyncio.to_thread(etcd.stop)


async def next_reply(watch: AsyncIterator[rpc_pb2.WatchResponse]) -> rpc_pb2.WatchResponse:
    return await asyncio.wait_for(anext(watch), TIMEOUT)


def shape(reply: rpc_pb2.WatchResponse) -> list[tuple[int, bytes, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in reply.events]


async def opened(watch: Watch) -> AsyncIterator[rpc_pb2.WatchResponse]:
    replies = aiter(watch)
    created = await next_reply(replies)
    assert created.created and watch.watch_id == created.watch_id
    return replies


async def test_a_watch_yields_created_then_each_write_in_order(client: KVClient) -> None:
    watch = client.watch("w/", prefix_end("w/"))
    replies = await opened(watch)
    first = await client.put("w/a", "1")
    await client.put("other", "x")
    second = await client.delete_range("w/a")
    got = [shape(await next_reply(replies)) for _ in range(2)]
    assert got == [
        [(PUT, b"w/a", b"1", first.header.revision)],
        [(DELETE, b"w/a", b"", second.header.revision)],
    ]
    watch.close()


async def test_a_watch_from_a_past_revision_replays_it_with_prev_kv(client: KVClient) -> None:
    one = await client.put("k", "1")
    await client.put("k", "2")
    watch = client.watch("k", start_revision=one.header.revision + 1, prev_kv=True)
    replies = await opened(watch)
    reply = await next_reply(replies)
    assert shape(reply) == [(PUT, b"k", b"2", one.header.revision + 1)]
    assert reply.events[0].prev_kv.value == b"1"
    watch.close()


async def test_cancel_ends_the_iteration_with_a_canceled_reply(client: KVClient) -> None:
    watch = client.watch("k")
    replies = await opened(watch)
    watch.cancel()
    reply = await next_reply(replies)
    assert reply.canceled and reply.watch_id == watch.watch_id
    with pytest.raises(StopAsyncIteration):
        await next_reply(replies)


async def test_a_start_below_the_compaction_ends_with_the_compaction_revision(
    client: KVClient,
) -> None:
    await client.put("k", "1")
    latest = await client.put("k", "2")
    await client.compact(latest.header.revision)
    replies = aiter(client.watch("k", start_revision=1))
    reply = await next_reply(replies)
    while not reply.canceled:
        reply = await next_reply(replies)
    assert reply.compact_revision == latest.header.revision
    with pytest.raises(StopAsyncIteration):
        await next_reply(replies)
