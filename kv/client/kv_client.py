"""`KVClient`: a connection to one etcd (or kv) endpoint, with one method per etcd RPC
(chapter 1; the lease calls are chapter 7's, the watch chapter 8's, maintenance and cluster
calls chapters 2 and 5's).

Each method builds one etcd request and returns etcd's protobuf response unchanged; a failed
call raises `kv.server.errors.EtcdError` with the gRPC status code and the server's message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar

import grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.api.mvccpb import kv_pb2
from kv.client.keep_alive import KeepAlive
from kv.client.keys import Bytes, to_bytes
from kv.client.txn import txn_request
from kv.client.watch import Watch
from kv.server.errors import EtcdError

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
            raise EtcdError.of_failed_call(error) from error

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
            key=to_bytes(key),
            range_end=to_bytes(range_end),
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
            key=to_bytes(key),
            value=to_bytes(value),
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
            key=to_bytes(key), range_end=to_bytes(range_end), prev_kv=prev_kv
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
            key=to_bytes(key),
            range_end=to_bytes(range_end),
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
            raise EtcdError.of_failed_call(error) from error

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
