"""A small asyncio client for etcd's v3 API, over grpc.aio (chapter 1).

The tests, the benchmark and later the TUI talk to kv (and to the real etcd: the wire is the
same) through `KVClient`. It is deliberately thin: each method builds one etcd request and
returns etcd's protobuf response unchanged, so a test can assert on exactly what the server
sent. Keys and values may be ``str`` (encoded as UTF-8) or ``bytes``.

A failed call raises `kv.server.errors.EtcdError` carrying the gRPC status code and the
server's message, the same pair etcd's Go client matches on (etcd:
``api/v3rpc/rpctypes/error.go``)::

    async with KVClient("127.0.0.1:2379") as client:
        await client.put("greeting", "hello")
        kv = await client.get("greeting")
        assert kv is not None and kv.value == b"hello"
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.api.mvccpb import kv_pb2
from kv.server.errors import EtcdError

Bytes = str | bytes
Response = TypeVar("Response")

#: A gRPC channel argument, ``(name, value)``, e.g. ``("grpc.use_local_subchannel_pool", 1)``.
#: The names are gRPC core's ``GRPC_ARG_*`` strings (grpc:
#: ``include/grpc/impl/channel_arg_names.h``).
ChannelOption = tuple[str, int | str]

#: Seconds a call may take unless the call says otherwise. Generous: a test fails fast on a
#: dead server anyway, and a busy CI machine should not turn into flaky tests.
DEFAULT_TIMEOUT = 5.0

# clientv3 accepts responses up to math.MaxInt32 bytes by default; a large range must not
# fail in the client before the server's own limits are even tested.
_CHANNEL_OPTIONS: Sequence[ChannelOption] = [("grpc.max_receive_message_length", 2**31 - 1)]


def _bytes(data: Bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


# --8<-- [start:prefix_end]
def prefix_end(prefix: Bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``.

    etcd's rule (clientv3 ``GetPrefixRangeEnd``): increment the last byte that is not 0xff
    and drop everything after it. A prefix of only 0xff bytes (or an empty one) has no upper
    bound, so the answer is ``b"\\x00"``, which etcd reads as "to the end of the key space".
    """
    end = bytearray(_bytes(prefix))
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


# --8<-- [end:prefix_end]


def key_after(key: Bytes) -> bytes:
    """The smallest key greater than ``key``: ``key + b"\\x00"``.

    Where the next page of a range begins: ask for ``[key_after(last_key), range_end)`` with
    the same ``limit`` while the answer says ``more`` (etcdctl's ``--from-key`` paging, and
    clientv3's ``mirror`` syncer, continue this way).
    """
    return _bytes(key) + b"\x00"


class KVClient:
    """A connection to one etcd (or kv) endpoint, ``host:port``.

    Create it inside a running event loop; close it with `close` or use ``async with``.
    Every method takes ``timeout`` (seconds, default `DEFAULT_TIMEOUT` or the client's own).

    ``options`` are extra gRPC channel arguments; one with the same name as a default of the
    client's replaces it. gRPC gives the channels of one process that have equal arguments one
    shared connection; ``options=[("grpc.use_local_subchannel_pool", 1)]`` gives this client a
    connection of its own.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        options: Sequence[ChannelOption] = (),
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        merged = dict(_CHANNEL_OPTIONS) | dict(options)
        self._channel = grpc.aio.insecure_channel(endpoint, options=list(merged.items()))
        self._kv = rpc_pb2_grpc.KVStub(self._channel)
        self._maintenance = rpc_pb2_grpc.MaintenanceStub(self._channel)
        self._cluster = rpc_pb2_grpc.ClusterStub(self._channel)
        self._watch = rpc_pb2_grpc.WatchStub(self._channel)
        self._lease = rpc_pb2_grpc.LeaseStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def unreachable(self) -> bool:
        """The channel's last attempt to connect failed: a call now would fail without
        reaching the server (tests use it to avoid requests that are certain to be lost)."""
        state = self._channel.get_state(try_to_connect=False)
        return state is grpc.ChannelConnectivity.TRANSIENT_FAILURE

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def _call(
        self,
        method: Callable[..., Awaitable[Response]],
        request: object,
        timeout: float | None,
    ) -> Response:
        """Make one unary call; a gRPC error becomes an `EtcdError` with etcd's code and text."""
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.aio.AioRpcError as error:
            raise EtcdError(error.code(), error.details() or "") from error

    # --- KV ------------------------------------------------------------------------------

    async def range(
        self,
        key: Bytes,
        range_end: Bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
        serializable: bool = False,
        sort_order: rpc_pb2.RangeRequest.SortOrder = rpc_pb2.RangeRequest.NONE,
        sort_target: rpc_pb2.RangeRequest.SortTarget = rpc_pb2.RangeRequest.KEY,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
        timeout: float | None = None,
    ) -> rpc_pb2.RangeResponse:
        """Read ``key``, or ``[key, range_end)``; see etcd's ``RangeRequest`` for each field."""
        request = rpc_pb2.RangeRequest(
            key=_bytes(key),
            range_end=_bytes(range_end),
            revision=revision,
            limit=limit,
            count_only=count_only,
            keys_only=keys_only,
            serializable=serializable,
            sort_order=sort_order,
            sort_target=sort_target,
            min_mod_revision=min_mod_revision,
            max_mod_revision=max_mod_revision,
            min_create_revision=min_create_revision,
            max_create_revision=max_create_revision,
        )
        return await self._call(self._kv.Range, request, timeout)

    async def get(
        self, key: Bytes, *, revision: int = 0, timeout: float | None = None
    ) -> kv_pb2.KeyValue | None:
        """The ``KeyValue`` of one key (at ``revision``, 0 = latest), or None if it is absent."""
        response = await self.range(key, revision=revision, timeout=timeout)
        return response.kvs[0] if response.kvs else None

    async def put(
        self,
        key: Bytes,
        value: Bytes,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
        timeout: float | None = None,
    ) -> rpc_pb2.PutResponse:
        """Write ``key`` = ``value``; one new revision."""
        request = rpc_pb2.PutRequest(
            key=_bytes(key),
            value=_bytes(value),
            lease=lease,
            prev_kv=prev_kv,
            ignore_value=ignore_value,
            ignore_lease=ignore_lease,
        )
        return await self._call(self._kv.Put, request, timeout)

    async def delete_range(
        self,
        key: Bytes,
        range_end: Bytes = b"",
        *,
        prev_kv: bool = False,
        timeout: float | None = None,
    ) -> rpc_pb2.DeleteRangeResponse:
        """Delete ``key``, or ``[key, range_end)``; one new revision if anything was deleted."""
        request = rpc_pb2.DeleteRangeRequest(
            key=_bytes(key), range_end=_bytes(range_end), prev_kv=prev_kv
        )
        return await self._call(self._kv.DeleteRange, request, timeout)

    async def compact(
        self, revision: int, *, physical: bool = False, timeout: float | None = None
    ) -> rpc_pb2.CompactionResponse:
        """Forget the history below ``revision``."""
        request = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        return await self._call(self._kv.Compact, request, timeout)

    async def txn(
        self,
        compare: Sequence[rpc_pb2.Compare] = (),
        success: Sequence[rpc_pb2.RequestOp] = (),
        failure: Sequence[rpc_pb2.RequestOp] = (),
        *,
        timeout: float | None = None,
    ) -> rpc_pb2.TxnResponse:
        """If every compare holds, run ``success``, else ``failure``: one revision (chapter 6).

        Build the parts with `compare`, `range_op`, `put_op`, `delete_op` and `txn_op`.
        """
        return await self._call(self._kv.Txn, txn_request(compare, success, failure), timeout)

    # --- Lease (chapter 7) -------------------------------------------------------------------

    async def lease_grant(
        self, ttl: int, lease_id: int = 0, *, timeout: float | None = None
    ) -> rpc_pb2.LeaseGrantResponse:
        """A lease of ``ttl`` seconds (at least the member's minimum); ``lease_id`` 0 lets the
        server choose the ID (``etcdctl lease grant``)."""
        request = rpc_pb2.LeaseGrantRequest(TTL=ttl, ID=lease_id)
        return await self._call(self._lease.LeaseGrant, request, timeout)

    async def lease_revoke(
        self, lease_id: int, *, timeout: float | None = None
    ) -> rpc_pb2.LeaseRevokeResponse:
        """End a lease now; its keys are deleted in the same revision (``etcdctl lease revoke``)."""
        request = rpc_pb2.LeaseRevokeRequest(ID=lease_id)
        return await self._call(self._lease.LeaseRevoke, request, timeout)

    async def lease_time_to_live(
        self, lease_id: int, *, keys: bool = False, timeout: float | None = None
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        """The lease's granted and remaining TTL (-1: no such lease), with ``keys`` the keys
        attached to it (``etcdctl lease timetolive --keys``)."""
        request = rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id, keys=keys)
        return await self._call(self._lease.LeaseTimeToLive, request, timeout)

    async def lease_leases(self, *, timeout: float | None = None) -> rpc_pb2.LeaseLeasesResponse:
        """The IDs of every live lease (``etcdctl lease list``)."""
        request = rpc_pb2.LeaseLeasesRequest()
        return await self._call(self._lease.LeaseLeases, request, timeout)

    def lease_keep_alive(self, lease_id: int) -> KeepAlive:
        """A LeaseKeepAlive stream for ``lease_id``: each `KeepAlive.renew` renews the lease
        once (``etcdctl lease keep-alive``; chapter 9's sessions renew every TTL/3)."""
        return KeepAlive(self._lease, lease_id)

    # --- Watch (chapter 8) -------------------------------------------------------------------

    def watch(
        self,
        key: Bytes,
        range_end: Bytes = b"",
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
        progress_notify: bool = False,
        require_leader: bool = False,
    ) -> Watch:
        """Watch ``key``, or ``[key, range_end)``, from ``start_revision`` (0: from now on).

        Opens one Watch stream with one watcher on it; iterate the `Watch` for etcd's replies
        (the ``created`` one first). ``require_leader`` sends etcd's ``hasleader`` metadata, as
        etcdctl does: a member without a leader refuses the stream. The stream has no
        deadline; `Watch.cancel` asks the server to end it, `Watch.close` drops it.
        """
        create = rpc_pb2.WatchCreateRequest(
            key=_bytes(key),
            range_end=_bytes(range_end),
            start_revision=start_revision,
            prev_kv=prev_kv,
            progress_notify=progress_notify,
        )
        metadata = (("hasleader", "true"),) if require_leader else ()
        return Watch(self._watch, create, metadata)

    # --- Maintenance and Cluster -----------------------------------------------------------

    async def status(self, *, timeout: float | None = None) -> rpc_pb2.StatusResponse:
        """The member's version, sizes and raft position (``etcdctl endpoint status``)."""
        return await self._call(self._maintenance.Status, rpc_pb2.StatusRequest(), timeout)

    async def hash_kv(
        self, revision: int = 0, *, timeout: float | None = None
    ) -> rpc_pb2.HashKVResponse:
        """etcd's checksum of the key-value history up to ``revision`` (0 = latest)."""
        request = rpc_pb2.HashKVRequest(revision=revision)
        return await self._call(self._maintenance.HashKV, request, timeout)

    async def alarm_list(self, *, timeout: float | None = None) -> rpc_pb2.AlarmResponse:
        """The raised alarms (``etcdctl alarm list``)."""
        request = rpc_pb2.AlarmRequest(
            action=rpc_pb2.AlarmRequest.GET, alarm=rpc_pb2.AlarmType.NONE
        )
        return await self._call(self._maintenance.Alarm, request, timeout)

    async def alarm(
        self,
        action: rpc_pb2.AlarmRequest.AlarmAction,
        *,
        member_id: int = 0,
        alarm: rpc_pb2.AlarmType = rpc_pb2.AlarmType.NONE,
        timeout: float | None = None,
    ) -> rpc_pb2.AlarmResponse:
        """One ``AlarmRequest``: GET, ACTIVATE or DEACTIVATE ``alarm`` of ``member_id``."""
        request = rpc_pb2.AlarmRequest(action=action, memberID=member_id, alarm=alarm)
        return await self._call(self._maintenance.Alarm, request, timeout)

    async def alarm_disarm(self, *, timeout: float | None = None) -> rpc_pb2.AlarmResponse:
        """Clear every raised alarm as ``etcdctl alarm disarm`` does: list them, then send a
        DEACTIVATE for each; the answer holds the alarms cleared (clientv3 ``AlarmDisarm``)."""
        cleared = rpc_pb2.AlarmResponse()
        for raised in (await self.alarm_list(timeout=timeout)).alarms:
            response = await self.alarm(
                rpc_pb2.AlarmRequest.DEACTIVATE,
                member_id=raised.memberID,
                alarm=raised.alarm,
                timeout=timeout,
            )
            cleared.alarms.extend(response.alarms)
        return cleared

    async def defragment(self, *, timeout: float | None = None) -> rpc_pb2.DefragmentResponse:
        """Give the backend's free pages back to the file system (``etcdctl defrag``)."""
        request = rpc_pb2.DefragmentRequest()
        return await self._call(self._maintenance.Defragment, request, timeout)

    async def hash(self, *, timeout: float | None = None) -> rpc_pb2.HashResponse:
        """A checksum of the member's whole backend (etcd's Maintenance.Hash)."""
        return await self._call(self._maintenance.Hash, rpc_pb2.HashRequest(), timeout)

    async def snapshot(
        self, *, timeout: float | None = None
    ) -> AsyncIterator[rpc_pb2.SnapshotResponse]:
        """The messages of a Snapshot stream, as the server sends them (``etcdctl snapshot
        save`` writes their blobs to a file, one after the other). ``timeout`` bounds the whole
        stream."""
        call = self._maintenance.Snapshot(
            rpc_pb2.SnapshotRequest(), timeout=self.timeout if timeout is None else timeout
        )
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as error:
            raise EtcdError(error.code(), error.details() or "") from error

    async def member_list(self, *, timeout: float | None = None) -> rpc_pb2.MemberListResponse:
        """The cluster's members (``etcdctl member list``)."""
        return await self._call(self._cluster.MemberList, rpc_pb2.MemberListRequest(), timeout)

    async def member_add(
        self, peer_urls: Sequence[str], *, learner: bool = False, timeout: float | None = None
    ) -> rpc_pb2.MemberAddResponse:
        """Add a member (``etcdctl member add [--learner]``); it must then be started with
        ``--initial-cluster-state existing``."""
        request = rpc_pb2.MemberAddRequest(peerURLs=peer_urls, isLearner=learner)
        return await self._call(self._cluster.MemberAdd, request, timeout)

    async def member_remove(
        self, member_id: int, *, timeout: float | None = None
    ) -> rpc_pb2.MemberRemoveResponse:
        request = rpc_pb2.MemberRemoveRequest(ID=member_id)
        return await self._call(self._cluster.MemberRemove, request, timeout)

    async def member_promote(
        self, member_id: int, *, timeout: float | None = None
    ) -> rpc_pb2.MemberPromoteResponse:
        request = rpc_pb2.MemberPromoteRequest(ID=member_id)
        return await self._call(self._cluster.MemberPromote, request, timeout)

    async def move_leader(
        self, target_id: int, *, timeout: float | None = None
    ) -> rpc_pb2.MoveLeaderResponse:
        """Hand leadership to ``target_id``; must be sent to the leader (``etcdctl
        move-leader`` finds it first)."""
        request = rpc_pb2.MoveLeaderRequest(targetID=target_id)
        return await self._call(self._maintenance.MoveLeader, request, timeout)


class Watch:
    """One Watch stream carrying one watcher (`KVClient.watch`): an async iterator of etcd's
    ``WatchResponse``s, the ``created`` reply first; it ends after a ``canceled`` reply (a
    cancel asked for, or a compaction past the start: ``compact_revision`` says which).

    A failure of the stream (the member died, refused a require-leader stream) raises
    `EtcdError` from the iteration.
    """

    def __init__(
        self,
        stub: rpc_pb2_grpc.WatchAsyncStub,
        create: rpc_pb2.WatchCreateRequest,
        metadata: Sequence[tuple[str, str]],
    ) -> None:
        self.request = create
        #: The server's id for the watcher, once its ``created`` reply came.
        self.watch_id: int | None = None
        self._outgoing: asyncio.Queue[rpc_pb2.WatchRequest | None] = asyncio.Queue()
        self._outgoing.put_nowait(rpc_pb2.WatchRequest(create_request=create))
        self._call = stub.Watch(self._requests(), metadata=tuple(metadata))

    async def _requests(self) -> AsyncIterator[rpc_pb2.WatchRequest]:
        while (request := await self._outgoing.get()) is not None:
            yield request

    def __aiter__(self) -> AsyncIterator[rpc_pb2.WatchResponse]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[rpc_pb2.WatchResponse]:
        try:
            async for response in self._call:
                if response.created:
                    self.watch_id = response.watch_id
                yield response
                if response.canceled:
                    return
        except grpc.aio.AioRpcError as error:
            raise EtcdError(error.code(), error.details() or "") from error
        finally:
            self.close()

    def cancel(self) -> None:
        """Ask the server to cancel the watcher: it answers ``canceled`` and the iteration
        ends (etcd's ``WatchCancelRequest``). Before the ``created`` reply, drops the stream."""
        if self.watch_id is None:
            self.close()
            return
        cancel = rpc_pb2.WatchCancelRequest(watch_id=self.watch_id)
        self._outgoing.put_nowait(rpc_pb2.WatchRequest(cancel_request=cancel))

    def close(self) -> None:
        """Drop the stream at once (the server forgets its watchers)."""
        self._outgoing.put_nowait(None)
        self._call.cancel()


class KeepAlive:
    """One LeaseKeepAlive stream for one lease (`KVClient.lease_keep_alive`).

    The stream stays open between renewals, as clientv3's does; `close` drops it.
    """

    def __init__(self, stub: rpc_pb2_grpc.LeaseAsyncStub, lease_id: int) -> None:
        self.lease_id = lease_id
        self._call = stub.LeaseKeepAlive()

    async def renew(self) -> rpc_pb2.LeaseKeepAliveResponse:
        """Renew the lease once: the answer's ``TTL`` is the full granted TTL, or 0 if the lease
        is gone (expired or revoked: etcd answers that without an error).

        Raises:
            EtcdError: the stream failed (the member is down or cut off).
        """
        try:
            await self._call.write(rpc_pb2.LeaseKeepAliveRequest(ID=self.lease_id))
            response = await self._call.read()
        except grpc.aio.AioRpcError as error:
            raise EtcdError(error.code(), error.details() or "") from error
        if not isinstance(response, rpc_pb2.LeaseKeepAliveResponse):  # EOF: ended, no status
            raise EtcdError(grpc.StatusCode.UNAVAILABLE, "kv: the keep-alive stream ended")
        return response

    def close(self) -> None:
        """Drop the stream (the lease lives on until its TTL runs out)."""
        self._call.cancel()


# --- Transactions (chapter 6): the parts of a TxnRequest -----------------------------------

#: ``compare``'s targets and relations, named as etcdctl's txn syntax names them.
COMPARE_TARGETS = {
    "version": rpc_pb2.Compare.VERSION,
    "create": rpc_pb2.Compare.CREATE,
    "mod": rpc_pb2.Compare.MOD,
    "value": rpc_pb2.Compare.VALUE,
    "lease": rpc_pb2.Compare.LEASE,
}
COMPARE_RESULTS = {
    "=": rpc_pb2.Compare.EQUAL,
    "!=": rpc_pb2.Compare.NOT_EQUAL,
    ">": rpc_pb2.Compare.GREATER,
    "<": rpc_pb2.Compare.LESS,
}
#: The ``target_union`` member each target's operand goes in.
_OPERANDS = {"version": "version", "create": "create_revision", "mod": "mod_revision"}


def compare(
    key: Bytes, target: str, result: str, operand: int | Bytes, *, range_end: Bytes = b""
) -> rpc_pb2.Compare:
    """``compare("k", "value", "=", "v1")``, ``compare("k", "create", "=", 0)`` (k is absent),
    ``compare("p", "mod", "<", 9, range_end=prefix_end("p"))`` (every key under p)."""
    built = rpc_pb2.Compare(
        key=_bytes(key),
        range_end=_bytes(range_end),
        target=COMPARE_TARGETS[target],
        result=COMPARE_RESULTS[result],
    )
    if isinstance(operand, int):
        setattr(built, _OPERANDS.get(target, target), operand)
    else:
        built.value = _bytes(operand)
    return built


def range_op(key: Bytes, range_end: Bytes = b"", **fields: Any) -> rpc_pb2.RequestOp:
    """A range in a txn; ``fields`` are `RangeRequest`'s (``revision=3``, ``limit=1``...)."""
    request = rpc_pb2.RangeRequest(key=_bytes(key), range_end=_bytes(range_end), **fields)
    return rpc_pb2.RequestOp(request_range=request)


def put_op(key: Bytes, value: Bytes, **fields: Any) -> rpc_pb2.RequestOp:
    """A put in a txn; ``fields`` are `PutRequest`'s (``prev_kv=True``...)."""
    request = rpc_pb2.PutRequest(key=_bytes(key), value=_bytes(value), **fields)
    return rpc_pb2.RequestOp(request_put=request)


def delete_op(key: Bytes, range_end: Bytes = b"", **fields: Any) -> rpc_pb2.RequestOp:
    """A delete in a txn; ``fields`` are `DeleteRangeRequest`'s (``prev_kv=True``)."""
    request = rpc_pb2.DeleteRangeRequest(key=_bytes(key), range_end=_bytes(range_end), **fields)
    return rpc_pb2.RequestOp(request_delete_range=request)


def txn_op(
    compare: Sequence[rpc_pb2.Compare] = (),
    success: Sequence[rpc_pb2.RequestOp] = (),
    failure: Sequence[rpc_pb2.RequestOp] = (),
) -> rpc_pb2.RequestOp:
    """A txn nested in a txn's branch."""
    return rpc_pb2.RequestOp(request_txn=txn_request(compare, success, failure))


def txn_request(
    compare: Sequence[rpc_pb2.Compare] = (),
    success: Sequence[rpc_pb2.RequestOp] = (),
    failure: Sequence[rpc_pb2.RequestOp] = (),
) -> rpc_pb2.TxnRequest:
    return rpc_pb2.TxnRequest(compare=compare, success=success, failure=failure)
