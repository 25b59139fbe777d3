"""The Watch service on a running member (in-process): the stream, its replies, require-leader,
fragments, and a member's writes of every kind reaching its watchers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.client import KVClient
from kv.server.flag_values import parse_duration
from kv.server.requests.watch_service import fragments

Create = rpc_pb2.WatchCreateRequest
TIMEOUT = 10.0


class Stream:
    """A Watch call: send requests, read replies (each read has a deadline)."""

    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()):
        self._requests: asyncio.Queue[rpc_pb2.WatchRequest | None] = asyncio.Queue()
        self.call = rpc_pb2_grpc.WatchStub(channel).Watch(self._outgoing(), metadata=metadata)

    async def _outgoing(self) -> AsyncIterator[rpc_pb2.WatchRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    def create(self, **fields: object) -> None:
        self._requests.put_nowait(rpc_pb2.WatchRequest(create_request=Create(**fields)))  # type: ignore[arg-type]

    def cancel(self, watch_id: int) -> None:
        cancel = rpc_pb2.WatchCancelRequest(watch_id=watch_id)
        self._requests.put_nowait(rpc_pb2.WatchRequest(cancel_request=cancel))

    def progress(self) -> None:
        progress = rpc_pb2.WatchProgressRequest()
        self._requests.put_nowait(rpc_pb2.WatchRequest(progress_request=progress))

    async def read(self) -> rpc_pb2.WatchResponse:
        response = await asyncio.wait_for(self.call.read(), TIMEOUT)
        assert isinstance(response, rpc_pb2.WatchResponse), response
        return response


@pytest.fixture
async def channel(kv_server: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(kv_server) as opened:
        yield opened


async def test_a_watch_gets_a_created_reply_then_each_write(
    channel: grpc.aio.Channel, client: KVClient
) -> None:
    stream = Stream(channel)
    stream.create(key=b"greeting")
    created = await stream.read()
    assert created.created and created.watch_id == 0 and created.header.member_id
    await client.put(b"greeting", b"hello")
    reply = await stream.read()
    assert [(e.type, e.kv.key, e.kv.value) for e in reply.events] == [(0, b"greeting", b"hello")]
    assert reply.header.revision == reply.events[0].kv.mod_revision


async def test_a_txn_is_one_reply_with_its_events_in_operation_order(
    channel: grpc.aio.Channel, kv_server: str
) -> None:
    stream = Stream(channel)
    stream.create(key=b"k", range_end=b"l")
    await stream.read()
    put = lambda key: rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=b"v"))  # noqa: E731
    txn = rpc_pb2.TxnRequest(success=[put(b"k3"), put(b"k1"), put(b"k2")])
    await rpc_pb2_grpc.KVStub(channel).Txn(txn)
    reply = await stream.read()
    assert [e.kv.key for e in reply.events] == [b"k3", b"k1", b"k2"]
    assert {e.kv.mod_revision for e in reply.events} == {reply.header.revision}


async def test_a_start_in_the_past_is_caught_up_and_compaction_cancels_below_it(
    channel: grpc.aio.Channel, client: KVClient
) -> None:
    for value in (b"1", b"2", b"3"):
        await client.put(b"a", value)
    await rpc_pb2_grpc.KVStub(channel).Compact(rpc_pb2.CompactionRequest(revision=3))
    stream = Stream(channel)
    stream.create(key=b"a", start_revision=3)
    await stream.read()
    caught_up = await stream.read()
    assert [e.kv.mod_revision for e in caught_up.events] == [3, 4]
    stream.create(key=b"a", start_revision=2)
    assert (await stream.read()).created
    cancel = await stream.read()
    assert (cancel.canceled, cancel.compact_revision, cancel.header.revision) == (True, 3, 0)


async def test_a_progress_request_answers_with_id_minus_one_and_the_revision(
    channel: grpc.aio.Channel, client: KVClient
) -> None:
    await client.put(b"a", b"1")
    stream = Stream(channel)
    stream.progress()
    reply = await stream.read()
    assert (reply.watch_id, reply.header.revision, list(reply.events)) == (-1, 2, [])


async def test_cancel_replies_canceled_with_the_id(channel: grpc.aio.Channel) -> None:
    stream = Stream(channel)
    stream.create(key=b"a", watch_id=7)
    assert (await stream.read()).watch_id == 7
    stream.cancel(7)
    reply = await stream.read()
    assert (reply.watch_id, reply.canceled) == (7, True)


async def test_progress_notify_comes_at_the_configured_interval(start_server: object) -> None:
    endpoint = await start_server(experimental_watch_progress_notify_interval=0.2)  # type: ignore[operator]
    async with grpc.aio.insecure_channel(endpoint) as opened:
        stream = Stream(opened)
        stream.create(key=b"a", progress_notify=True)
        await stream.read()
        reply = await stream.read()
        assert (reply.watch_id, list(reply.events), reply.created) == (0, [], False)


def test_a_big_reply_is_split_into_fragments_below_the_limit() -> None:
    response = rpc_pb2.WatchResponse(watch_id=1)
    for number in range(10):
        event = response.events.add()
        event.kv.key, event.kv.value = b"k%d" % number, b"x" * 100
    pieces = list(fragments(response, 400))
    assert [p.fragment for p in pieces] == [True] * (len(pieces) - 1) + [False]
    assert all(p.ByteSize() < 400 for p in pieces)
    assert [e.kv.key for p in pieces for e in p.events] == [e.kv.key for e in response.events]


def test_a_reply_with_one_event_is_never_split() -> None:
    response = rpc_pb2.WatchResponse(watch_id=1)
    response.events.add().kv.value = b"x" * 1000
    assert [p.fragment for p in fragments(response, 400)] == [False]


@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600.0), ("1m30s", 90.0), ("200ms", 0.2), ("0", 0.0)]
)
def test_the_progress_interval_flag_takes_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("m", 'time: invalid duration "m"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("10m ", 'time: unknown unit "m " in duration "10m "'),
    ],
)
def test_a_malformed_duration_is_refused_with_gos_message(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(text)
    assert str(refused.value) == message
