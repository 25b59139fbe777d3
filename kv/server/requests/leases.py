"""The lease requests: etcd's Lease service, answered by one member (chapter 7).

Two kinds of lease request travel two different ways (etcd: ``etcdserver/v3_server.go``):

* **Grant and revoke change replicated state**, so they go through the log like a put
  (`kv.server.applied.leases` applies them). A grant with ID 0 gets its ID here, on the member
  the client asked, before it is proposed: every member must apply the same ID.
* **Renew (keep-alive) and TimeToLive read the leader's deadlines**, which exist only on the
  leader's lessor. The leader answers them itself; a follower forwards them to the leader over
  the peer service (`kv.server.peers.peer_service`: ``Peer.LeaseRenew``, ``LeaseTimeToLive``), as
  etcd's followers forward them over HTTP to the leader's peer URL. Renewals do not go
  through the log: a keep-alive every few seconds per client would fill it, and a deadline
  only matters on the member that keeps it.

The list of leases (``Leases``) is read locally, on any member, as in etcd.

A renewal of a lease that is past its deadline but not yet revoked waits for the revoke and
then answers "not found" (TTL 0): the leader has decided the lease is over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.lease import LeaseError, LeaseExpiredError, Lessor, server_chosen_id
from kv.server import errors
from kv.server.errors import EtcdError
from kv.server.replica import expiry
from kv.server.requests import quota

if TYPE_CHECKING:  # the server builds this class: no import cycle at run time
    from kv.server.requests.server import Server

Answer = TypeVar("Answer")

#: Pause between two attempts to reach the leader (etcd: 50 ms).
RETRY_SECONDS = 0.05


class LeaseRequests:
    """Grant, Revoke, KeepAlive, TimeToLive and Leases for one member's `Server`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.replica = server.replica

    @property
    def lessor(self) -> Lessor:
        # The state machine is replaced when a leader's snapshot is installed: ask each time.
        return self.replica.machine.leases.lessor

    # -- through the log ------------------------------------------------------------------

    # --8<-- [start:grant]
    async def grant(self, request: rpc_pb2.LeaseGrantRequest) -> rpc_pb2.LeaseGrantResponse:
        self.server.refuse_on_learner()
        await self.server.check_quota(quota.LEASE_OVERHEAD)
        if not request.ID:  # the server chooses, with etcd's layout (`server_chosen_id`)
            request.ID = server_chosen_id(self.replica.proposals.next_request_id)
        response = await self.server.write(InternalRaftRequest(lease_grant=request))
        assert isinstance(response, rpc_pb2.LeaseGrantResponse)
        return response

    # --8<-- [end:grant]

    async def revoke(self, request: rpc_pb2.LeaseRevokeRequest) -> rpc_pb2.LeaseRevokeResponse:
        self.server.refuse_on_learner()
        response = await self.server.write(InternalRaftRequest(lease_revoke=request))
        assert isinstance(response, rpc_pb2.LeaseRevokeResponse)
        return response

    # -- answered by the leader -----------------------------------------------------------

    async def keep_alive(
        self, request: rpc_pb2.LeaseKeepAliveRequest
    ) -> rpc_pb2.LeaseKeepAliveResponse:
        """One keep-alive of the stream: TTL 0 for a lease that does not exist (etcd sends
        that, not an error); any other error ends the stream."""
        self.server.refuse_on_learner()
        try:
            response = await self._at_leader("LeaseRenew", self.renew_here, request)
        except EtcdError as error:
            if error != errors.LEASE_NOT_FOUND:
                raise
            response = rpc_pb2.LeaseKeepAliveResponse(ID=request.ID, TTL=0)
        response.header.CopyFrom(self.server.header(self.server.store.current_revision))
        return response

    async def time_to_live(
        self, request: rpc_pb2.LeaseTimeToLiveRequest
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        """The lease's remaining and granted TTL (and keys): TTL -1 for an unknown lease."""
        self.server.refuse_on_learner()
        try:
            response = await self._at_leader("LeaseTimeToLive", self.time_to_live_here, request)
        except EtcdError as error:
            if error != errors.LEASE_NOT_FOUND:
                raise
            response = rpc_pb2.LeaseTimeToLiveResponse(ID=request.ID, TTL=-1)
        response.header.CopyFrom(self.server.header(self.server.store.current_revision))
        return response

    # --8<-- [start:renew_here]
    async def renew_here(
        self, request: rpc_pb2.LeaseKeepAliveRequest
    ) -> rpc_pb2.LeaseKeepAliveResponse:
        """Renew on this member's lessor, which must be the leader's (`LeaseAnswers`)."""
        deadline = time.monotonic() + self.replica.timing.request_timeout
        while True:
            try:
                await self._clear_checkpoint(request.ID)
                ttl = self.lessor.renew(request.ID, time.monotonic())
                return rpc_pb2.LeaseKeepAliveResponse(ID=request.ID, TTL=ttl)
            except LeaseExpiredError:
                # Past its deadline, its revoke on the way: wait until it is gone (then "not
                # found"), or this member stops leading (then the follower asks again).
                if time.monotonic() > deadline:
                    raise errors.TIMEOUT from None
                await asyncio.sleep(self.replica.timing.tick_seconds)
            except LeaseError as error:
                raise errors.from_lease(error) from error

    # --8<-- [end:renew_here]

    async def _clear_checkpoint(self, lease_id: int) -> None:
        """With lease checkpoints on, a renewal of a checkpointed lease first clears its
        checkpoint through the log, and waits until it is applied (etcd: ``Renew``), so that
        a later leader gives the renewed lease its full TTL (`kv.lease.checkpoint`)."""
        clear = self.lessor.renewal_checkpoint(lease_id, time.monotonic())
        if clear is not None:
            await expiry.propose_checkpoints(self.replica, [clear])

    async def time_to_live_here(
        self, request: rpc_pb2.LeaseTimeToLiveRequest
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        """Read the leader's deadline for the lease (`LeaseAnswers`)."""
        if not self.lessor.is_primary:
            raise errors.NOT_LEADER
        lease = self.lessor.lookup(request.ID)
        if lease is None:
            raise errors.LEASE_NOT_FOUND
        return rpc_pb2.LeaseTimeToLiveResponse(
            ID=lease.id,
            TTL=lease.remaining_ttl(time.monotonic()),
            grantedTTL=lease.ttl,
            keys=sorted(lease.keys) if request.keys else [],
        )

    # --8<-- [start:at_leader]
    async def _at_leader(
        self,
        method: str,
        here: Callable[[Any], Awaitable[Answer]],
        request: Any,
    ) -> Answer:
        """Answer ``request`` on the leader: here if this member leads (and its lessor is
        promoted), else through the leader's peer service; again, every `RETRY_SECONDS`,
        while the leader is unknown or moves, until the request timeout (etcd:
        ``LeaseRenew``, ``LeaseTimeToLive``). "Not found" is an answer, not a reason to retry.
        """
        deadline = time.monotonic() + self.replica.timing.request_timeout
        while True:
            try:
                if self.replica.is_leader:
                    return await here(request)
                if self.replica.leader:
                    answer: Answer = await self.replica.transport.forward_lease(
                        self.replica.leader, method, request
                    )
                    return answer
            except grpc.aio.AioRpcError as error:
                if error.code() == errors.LEASE_NOT_FOUND.code:
                    raise EtcdError.of_failed_call(error) from error
            except (EtcdError, LookupError) as error:
                if error == errors.LEASE_NOT_FOUND or error == errors.TIMEOUT:
                    raise
            if time.monotonic() > deadline:
                raise errors.TIMEOUT
            await asyncio.sleep(RETRY_SECONDS)

    # --8<-- [end:at_leader]

    # -- local --------------------------------------------------------------------------

    def leases(self) -> rpc_pb2.LeaseLeasesResponse:
        """Every lease this member knows, by ID, read locally (etcd: ``LeaseLeases``)."""
        self.server.refuse_on_learner()
        response = rpc_pb2.LeaseLeasesResponse(
            leases=[
                rpc_pb2.LeaseStatus(ID=lease.id) for lease in self.lessor.leases(time.monotonic())
            ]
        )
        response.header.CopyFrom(self.server.header(self.server.store.current_revision))
        return response
