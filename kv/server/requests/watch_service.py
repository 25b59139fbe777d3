"""etcd's Watch service: one bidirectional stream per client over the member's hub (chapter 8).

The hub (`kv.watch`) decides what each watcher is sent; this module is its driver, the part
with a clock and a socket (etcd: ``etcdserver/api/v3rpc/watch.go``):

* a *receive* task turns each ``WatchRequest`` into `WatchStream.create`, ``cancel`` or
  ``request_progress``;
* the *send* loop waits until the stream has replies, stamps each with the member's header and
  writes it (split into fragments when the watch asked for that and the reply is too big);
* one *catch-up* task per member calls `WatchHub.catch_up` every 100 ms while some watcher is
  behind (etcd: ``syncWatchersLoop``), and one calls `WatchHub.progress_tick` every
  ``--experimental-watch-progress-notify-interval`` (10 minutes, plus up to 10% jitter);
* a stream opened on a learner is refused at once with Unavailable ``etcdserver: rpc not
  supported for learner``, as etcd 3.4's stream interceptor refuses every stream there;
* a stream opened with metadata ``hasleader: true`` (etcdctl sets it) is refused with
  Unavailable ``etcdserver: no leader`` when the member knows no leader, and ended the same way
  after three election timeouts without one (etcd: ``v3rpc/interceptor.go``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.api.mvccpb import kv_pb2
from kv.server.applied.apply import to_pb
from kv.server.errors import EtcdError
from kv.server.requests.server import Server
from kv.watch import Filter, WatchHub, WatchRequest, WatchResponse, WatchStream

#: How often watchers that are behind read the history they missed (etcd: 100 ms).
CATCH_UP_SECONDS = 0.1
#: gRPC's allowance above --max-request-bytes; a fragmented reply's pieces stay below the sum.
GRPC_OVERHEAD_BYTES = 512 * 1024
#: Consecutive election timeouts without a leader that end a require-leader stream.
MAX_NO_LEADER_CHECKS = 3
NO_LEADER = "etcdserver: no leader"
_FILTERS = frozenset(int(f) for f in Filter)


def request_from_pb(create: rpc_pb2.WatchCreateRequest) -> WatchRequest:
    """etcd's create request as the hub's; unknown filter values are ignored, as in etcd."""
    return WatchRequest(
        key=create.key,
        range_end=create.range_end,
        start_revision=create.start_revision,
        prev_kv=create.prev_kv,
        filters=frozenset(Filter(f) for f in create.filters if f in _FILTERS),
        progress_notify=create.progress_notify,
        fragment=create.fragment,
        watch_id=create.watch_id,
    )


def response_to_pb(reply: WatchResponse, header: rpc_pb2.ResponseHeader) -> rpc_pb2.WatchResponse:
    """The hub's reply as etcd's message (``fragment`` is set by `fragments`, not here)."""
    response = rpc_pb2.WatchResponse(
        header=header,
        watch_id=reply.watch_id,
        created=reply.created,
        canceled=reply.canceled,
        compact_revision=reply.compact_revision,
        cancel_reason=reply.cancel_reason,
    )
    for event in reply.events:
        message = response.events.add(type=kv_pb2.Event.EventType.Value(event.type.name))
        message.kv.CopyFrom(to_pb(event.kv))
        if event.prev_kv is not None:
            message.prev_kv.CopyFrom(to_pb(event.prev_kv))
    return response


# --8<-- [start:fragments]
def fragments(response: rpc_pb2.WatchResponse, limit: int) -> Iterator[rpc_pb2.WatchResponse]:
    """Split a reply whose size reaches ``limit`` into pieces below it, each but the last
    marked ``fragment`` (etcd: ``sendFragments``). A reply with one event is never split."""
    if response.ByteSize() < limit or len(response.events) < 2:
        yield response
        return
    events = list(response.events)
    while events:
        piece = rpc_pb2.WatchResponse()
        piece.CopyFrom(response)
        del piece.events[:]
        piece.fragment = True
        while events:
            piece.events.append(events[0])
            if len(piece.events) > 1 and piece.ByteSize() >= limit:
                del piece.events[-1]
                break
            events.pop(0)
        piece.fragment = bool(events)
        yield piece


# --8<-- [end:fragments]


class WatchService(rpc_pb2_grpc.WatchServicer):
    """etcdserverpb.Watch, over the member's `WatchHub`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.progress_interval = server.watch_progress_interval
        self._timers: list[asyncio.Task[None]] = []
        self._streams = 0

    @property
    def hub(self) -> WatchHub:
        return self.server.replica.watches

    # --8<-- [start:watch]
    async def Watch(
        self,
        request_iterator: AsyncIterator[rpc_pb2.WatchRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[rpc_pb2.WatchResponse]:
        try:  # etcd's stream interceptor refuses any stream on a learner, before anything
            self.server.refuse_on_learner()
        except EtcdError as error:
            await context.abort(error.code, error.message)
        require_leader = _requires_leader(context)
        if require_leader and not self.server.replica.leader:
            await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER)
        self._opened()
        ready = asyncio.Event()
        stream = self.hub.open_stream(wake=ready.set)
        receiving = asyncio.create_task(_receive(request_iterator, stream))
        election = self.server.replica.timing.election_ms / 1000
        without_leader = 0
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ready.wait(), election)
                if receiving.done() and receiving.exception() is not None:
                    return  # the client's side broke: gRPC ends the call
                without_leader = 0 if self.server.replica.leader else without_leader + 1
                if require_leader and without_leader > MAX_NO_LEADER_CHECKS:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER)
                ready.clear()
                for reply in stream.take():
                    for message in self._messages(reply):
                        yield message
        finally:
            stream.close()
            receiving.cancel()
            self._closed()

    # --8<-- [end:watch]

    def _messages(self, reply: WatchResponse) -> Iterator[rpc_pb2.WatchResponse]:
        response = response_to_pb(reply, self.server.header(reply.revision))
        if not reply.fragment:
            return iter((response,))
        return fragments(response, self.server.max_request_bytes + GRPC_OVERHEAD_BYTES)

    def _opened(self) -> None:
        """A stream opened: the timers run while there is at least one."""
        self._streams += 1
        if not self._timers:
            self._timers = [
                asyncio.create_task(self._catch_up_loop()),
                asyncio.create_task(self._progress_loop()),
            ]

    def _closed(self) -> None:
        self._streams -= 1
        if not self._streams:
            for task in self._timers:
                task.cancel()
            self._timers = []

    async def _catch_up_loop(self) -> None:
        while True:
            await asyncio.sleep(CATCH_UP_SECONDS)
            if self.hub.behind:
                self.hub.catch_up()

    async def _progress_loop(self) -> None:
        while True:
            jitter = random.uniform(0, self.progress_interval / 10)
            await asyncio.sleep(self.progress_interval + jitter)
            self.hub.progress_tick()


async def _receive(requests: AsyncIterator[rpc_pb2.WatchRequest], stream: WatchStream) -> None:
    """What the client sends, handed to its stream (etcd: ``recvLoop``). A client that
    half-closes still gets its events, as in etcd."""
    async for request in requests:
        kind = request.WhichOneof("request_union")
        if kind == "create_request":
            stream.create(request_from_pb(request.create_request))
        elif kind == "cancel_request":
            stream.cancel(request.cancel_request.watch_id)
        elif kind == "progress_request":
            stream.request_progress()


def _requires_leader(context: grpc.aio.ServicerContext[Any, Any]) -> bool:
    metadata = context.invocation_metadata() or ()
    return any(key == "hasleader" and value == "true" for key, value in metadata)
