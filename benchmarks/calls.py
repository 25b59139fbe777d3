"""The calls the load makes: puts and ranges; compare-and-swap Txns, keep-alives, watches.

`benchmarks.load` runs these: a worker process opens ``channels`` connections, and its client
coroutines await a `Call` back to back. Puts and single-key ranges go through kv's
`KVClient` or through the bare generated stubs. Chapters 6-8's calls are always built on the
bare stubs (requests built up front where they can be), so the client spends as little CPU
per request as Python allows:

- **txn**: a compare-and-swap, as etcd's clients do one (clientv3's STM, a lock's
  acquisition): ``Txn(compare mod_revision(key) == the one I last saw, success: put key,
  failure: range key)``. Each worker owns its share of the keys, as a client owns its cache
  of them: it reads their mod_revisions once before the start, then learns each new one
  from the success's header revision (the put's revision is the key's new mod_revision) or
  from the failure's range. So one request is one try, and a try fails only when another
  of the worker's clients swapped the key since: the share that succeed measures the
  contention, high on many keys, low on a few hot ones that all of a worker's clients write.
- **keepalive**: the worker grants its share of the leases (unmeasured, before the start),
  and its clients send keep-alives of them over one LeaseKeepAlive stream per channel.
  Several keep-alives are in flight on a stream at once: a server answers a stream's
  keep-alives one after the other, in order (etcd: ``api/v3rpc/lease.go``
  ``leaseKeepAlive``), so each answer goes to the oldest waiting request.
- **watch**: each channel carries one Watch stream on which the worker creates its share of
  the watchers, all on the key space's prefix, waiting for each one's ``created`` answer
  before the start; a call reads the stream's next message and counts its events.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.client import KVClient, compare, prefix_end, put_op, range_op, txn_request

#: One call with this index (a key's, a lease's); what a client coroutine awaits in its loop.
#: It returns how many of what its workload counts it got: 1 for a request done, 0 for a
#: compare-and-swap whose compare failed, a watch message's events.
Call = Callable[[int], Awaitable[int]]
#: Seconds one request may take before it counts as failed (KVClient's default too).
REQUEST_TIMEOUT = 5.0
#: Seconds a lease the keep-alive load renews is granted for: far longer than any phase, so
#: that none expires while it runs.
LEASE_TTL = 3600
#: Lease grants in flight at once while a worker takes its leases.
GRANT_BATCH = 64


def stub_channel(endpoint: str) -> grpc.aio.Channel:
    """A channel of its own to ``endpoint``, on a TCP connection of its own."""
    # Channels with equal arguments share one connection through gRPC's global subchannel
    # pool; a local pool gives each channel its own TCP connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    return grpc.aio.insecure_channel(endpoint, options=options)


@contextlib.asynccontextmanager
async def channels(endpoint: str, count: int) -> AsyncIterator[list[grpc.aio.Channel]]:
    """``count`` channels to ``endpoint`` (`stub_channel`), closed afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(stub_channel(endpoint)) for _ in range(count)]


@contextlib.asynccontextmanager
async def kv_client_call(
    endpoint: str, operation: str, keys: list[bytes], value: bytes, serializable: bool
) -> AsyncIterator[Call]:
    """A put (``operation`` "put") or a single-key range `Call` through the project's
    `KVClient` (its own channel; gRPC pools the connection)."""
    async with KVClient(endpoint, timeout=REQUEST_TIMEOUT) as client:
        if operation == "put":

            async def put(index: int) -> int:
                await client.put(keys[index], value)
                return 1

            yield put
        else:

            async def get(index: int) -> int:
                await client.range(keys[index], serializable=serializable)
                return 1

            yield get


@contextlib.asynccontextmanager
async def stub_call(
    endpoint: str, operation: str, keys: list[bytes], value: bytes, serializable: bool
) -> AsyncIterator[Call]:
    """`kv_client_call` through the generated stub on a channel of its own, requests built up
    front."""
    async with stub_channel(endpoint) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)
        if operation == "put":
            puts = [rpc_pb2.PutRequest(key=key, value=value) for key in keys]

            async def put(index: int) -> int:
                await stub.Put(puts[index], timeout=REQUEST_TIMEOUT)
                return 1

            yield put
        else:
            ranges = [rpc_pb2.RangeRequest(key=key, serializable=serializable) for key in keys]

            async def get(index: int) -> int:
                await stub.Range(ranges[index], timeout=REQUEST_TIMEOUT)
                return 1

            yield get


async def mod_revisions(channel: grpc.aio.Channel, keys: Sequence[bytes]) -> list[int]:
    """The mod_revision of each of ``keys`` now (0 for a key that does not exist), read with
    one range from the first to the last (without the values)."""
    ordered = sorted(keys)
    listing = rpc_pb2.RangeRequest(key=ordered[0], range_end=ordered[-1] + b"\0", keys_only=True)
    response = await rpc_pb2_grpc.KVStub(channel).Range(listing, timeout=REQUEST_TIMEOUT)
    found = {kv.key: kv.mod_revision for kv in response.kvs}
    return [found.get(key, 0) for key in keys]


def txn_call(
    channel: grpc.aio.Channel, keys: Sequence[bytes], value: bytes, seen: list[int]
) -> Call:
    """A compare-and-swap on ``keys[index % len(keys)]``; ``seen`` holds the last
    mod_revision seen of each key (shared by the worker's calls) and is kept up to date."""
    stub = rpc_pb2_grpc.KVStub(channel)
    success = [[put_op(key, value)] for key in keys]
    failure = [[range_op(key)] for key in keys]

    async def swap(any_index: int) -> int:
        index = any_index % len(keys)
        condition = compare(keys[index], "mod", "=", seen[index])
        request = txn_request([condition], success[index], failure[index])
        response = await stub.Txn(request, timeout=REQUEST_TIMEOUT)
        if response.succeeded:
            seen[index] = response.header.revision
            return 1
        found = response.responses[0].response_range.kvs
        seen[index] = found[0].mod_revision if found else 0
        return 0

    return swap


async def grant_leases(channel: grpc.aio.Channel, count: int) -> list[int]:
    """Grant ``count`` leases of `LEASE_TTL` seconds (ids the server picks); their ids."""
    stub = rpc_pb2_grpc.LeaseStub(channel)
    request = rpc_pb2.LeaseGrantRequest(TTL=LEASE_TTL)
    ids: list[int] = []
    while len(ids) < count:
        batch = min(GRANT_BATCH, count - len(ids))
        answers = await asyncio.gather(
            *(stub.LeaseGrant(request, timeout=REQUEST_TIMEOUT) for _ in range(batch))
        )
        ids += [answer.ID for answer in answers]
    return ids


class KeepAliveStream:
    """One LeaseKeepAlive stream with several keep-alives in flight: the answers come in the
    order of the requests, so each goes to the oldest waiting one."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._call = rpc_pb2_grpc.LeaseStub(channel).LeaseKeepAlive()
        self._waiting: deque[asyncio.Future[rpc_pb2.LeaseKeepAliveResponse]] = deque()
        self._writing = asyncio.Lock()  # one write at a time on a grpc.aio stream
        self._reader = asyncio.create_task(self._read())

    async def keep_alive(self, lease_id: int) -> rpc_pb2.LeaseKeepAliveResponse:
        answer = asyncio.get_running_loop().create_future()
        async with self._writing:
            self._waiting.append(answer)
            await self._call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
        return await asyncio.wait_for(answer, REQUEST_TIMEOUT)

    async def _read(self) -> None:
        try:
            async for response in self._call:
                waiting = self._waiting.popleft()
                if not waiting.done():  # not given up on (timed out)
                    waiting.set_result(response)
        except grpc.aio.AioRpcError as error:
            while self._waiting:
                waiting = self._waiting.popleft()
                if not waiting.done():
                    waiting.set_exception(error)

    def close(self) -> None:
        self._call.cancel()
        self._reader.cancel()


def keepalive_call(stream: KeepAliveStream, leases: Sequence[int]) -> Call:
    """A keep-alive of lease ``leases[index % len(leases)]`` on ``stream``."""

    async def renew(index: int) -> int:
        await stream.keep_alive(leases[index % len(leases)])
        return 1

    return renew


async def watch_call(channel: grpc.aio.Channel, prefix: bytes, watchers: int) -> Call:
    """A Watch stream on ``channel`` carrying ``watchers`` watchers of ``prefix`` (created
    when this returns); the call reads its next message and counts the events in it."""
    stream = rpc_pb2_grpc.WatchStub(channel).Watch()
    create = rpc_pb2.WatchCreateRequest(key=prefix, range_end=prefix_end(prefix))
    for _ in range(watchers):
        await stream.write(rpc_pb2.WatchRequest(create_request=create))
    created = 0
    while created < watchers:
        response = await _next(stream)
        created += response.created

    async def events(_: int) -> int:
        return len((await _next(stream)).events)

    return events


async def _next(
    stream: "grpc.aio.StreamStreamCall[rpc_pb2.WatchRequest, rpc_pb2.WatchResponse]",
) -> rpc_pb2.WatchResponse:
    """The Watch stream's next message."""
    response = await stream.read()
    if not isinstance(response, rpc_pb2.WatchResponse):  # grpc.aio.EOF: the server ended it
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "Watch ended"
        )
    return response
