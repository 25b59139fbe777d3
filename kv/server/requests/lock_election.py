"""etcd's Lock and Election gRPC services, served by running chapter 9's recipes (chapter 9).

etcd serves ``v3lockpb.Lock`` and ``v3electionpb.Election`` by running its client-side recipes
(clientv3/concurrency) inside the server, through a client connected to the server itself
(etcd: v3lock/lock.go, v3election/election.go, over ``v3client``). kv does the same: each RPC
is a few lines that open a `kv.recipes.Session` on the lease the request names and call
`kv.recipes.Mutex` or `kv.recipes.Election`, through a `KVClient` connected to this member's
own client URL.

Why through a client, and not the `Server` methods directly: then the service runs *exactly*
the recipes chapter 9 teaches, with their waiting, their cancellation and their failure cases,
and nothing has to be written twice against two interfaces (a watch through the client is a
stream; inside the server it is the watch hub's callbacks). The cost is a loopback hop per
step, which a lock that waits on other processes does not notice. Requests made this way go
through the member's ordinary path: a follower forwards writes through Raft like any other.

What the services add to the recipes is etcd's server-side behaviour:

* A Lock or Campaign with lease 0 gets a new 60-second lease that nobody keeps alive (etcd's
  ``NewSession`` without a lease, then ``Orphan``); with a lease, the caller keeps it alive.
* A Lock or Campaign whose caller goes away (cancelled, deadline) leaves the line: the recipe
  deletes the key it put.
* Every error is answered with code UNKNOWN and the error's text. That is what etcd does, not a
  choice: its recipes' errors come back through the in-process client as plain Go errors, and
  gRPC sends a plain error as UNKNOWN (``etcdserver: requested lease not found``,
  ``election: not leader``, ``election: no leader``, ``"leader" field must be provided``).
* Unlock of a key that does not exist, and Resign of a leadership that is gone, succeed: both
  are a delete (or a txn) that finds nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import Any, NoReturn, TypeVar

import grpc

from kv.api.v3electionpb import v3election_pb2, v3election_pb2_grpc
from kv.api.v3lockpb import v3lock_pb2, v3lock_pb2_grpc
from kv.client import KVClient
from kv.recipes import Election, Leader, Leadership, Mutex, RecipeError, Session
from kv.server.errors import EtcdError

Response = TypeVar("Response")

#: etcd's ErrMissingLeaderKey: Proclaim or Resign without a ``leader``.
MISSING_LEADER_KEY = '"leader" field must be provided'


async def _answer(
    context: grpc.aio.ServicerContext[Any, Any], work: Awaitable[Response]
) -> Response:
    """``work``'s result; a recipe's error (or the client's) becomes UNKNOWN with its text."""
    try:
        return await work
    except (EtcdError, RecipeError) as error:
        await _refuse(context, str(error))


async def _refuse(context: grpc.aio.ServicerContext[Any, Any], message: str) -> NoReturn:
    await context.abort(grpc.StatusCode.UNKNOWN, message)


class LockService(v3lock_pb2_grpc.LockServicer):
    """v3lockpb.Lock: Lock waits to hold a named lock, Unlock releases it."""

    def __init__(self, client: KVClient) -> None:
        self.client = client

    async def Lock(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self._lock(request))

    async def Unlock(self, request, context):  # type: ignore[no-untyped-def]
        deleted = await _answer(context, self.client.delete_range(request.key))
        return v3lock_pb2.UnlockResponse(header=deleted.header)

    async def _lock(self, request: v3lock_pb2.LockRequest) -> v3lock_pb2.LockResponse:
        session = await Session.open(self.client, lease_id=request.lease, keep_alive=False)
        mutex = Mutex(session, request.name)
        await mutex.lock()
        return v3lock_pb2.LockResponse(header=mutex.header, key=mutex.key)


class ElectionService(v3election_pb2_grpc.ElectionServicer):
    """v3electionpb.Election: Campaign, Proclaim, Leader, Observe, Resign."""

    def __init__(self, client: KVClient) -> None:
        self.client = client

    async def Campaign(self, request, context):  # type: ignore[no-untyped-def]
        return await _answer(context, self._campaign(request))

    async def Proclaim(self, request, context):  # type: ignore[no-untyped-def]
        if not request.HasField("leader"):
            await _refuse(context, MISSING_LEADER_KEY)
        election = await _answer(context, self._resumed(request.leader))
        await _answer(context, election.proclaim(request.value))
        return v3election_pb2.ProclaimResponse(header=election.header)

    async def Resign(self, request, context):  # type: ignore[no-untyped-def]
        if not request.HasField("leader"):
            await _refuse(context, MISSING_LEADER_KEY)
        election = await _answer(context, self._resumed(request.leader))
        await _answer(context, election.resign())
        return v3election_pb2.ResignResponse(header=election.header)

    async def Leader(self, request, context):  # type: ignore[no-untyped-def]
        leader = await _answer(context, self._election(request.name).leader())
        return _leader_response(leader)

    async def Observe(self, request, context):  # type: ignore[no-untyped-def]
        try:
            async with contextlib.aclosing(self._election(request.name).observe()) as leaders:
                async for leader in leaders:
                    yield _leader_response(leader)
        except (EtcdError, RecipeError) as error:
            await _refuse(context, str(error))

    async def _campaign(
        self, request: v3election_pb2.CampaignRequest
    ) -> v3election_pb2.CampaignResponse:
        session = await Session.open(self.client, lease_id=request.lease, keep_alive=False)
        election = Election(session, request.name)
        await election.campaign(request.value)
        assert election.leadership is not None  # campaign returns only as the leader
        leader = v3election_pb2.LeaderKey(
            name=request.name,
            key=election.leadership.key,
            rev=election.leadership.revision,
            lease=session.lease_id,
        )
        return v3election_pb2.CampaignResponse(header=election.header, leader=leader)

    def _election(self, name: bytes) -> Election:
        # Leader and Observe need no lease: the session only carries the client.
        return Election(Session(self.client, lease_id=0), name)

    async def _resumed(self, key: v3election_pb2.LeaderKey) -> Election:
        """The election ``key`` names, with the leadership it claims (etcd: ResumeElection).
        Its lease is the one proclaims put with; 0 gets a new one, as in etcd."""
        session = await Session.open(self.client, lease_id=key.lease, keep_alive=False)
        return Election(session, key.name, Leadership(key.key, key.rev))


def _leader_response(leader: Leader) -> v3election_pb2.LeaderResponse:
    return v3election_pb2.LeaderResponse(header=leader.header, kv=leader.kv)


def add_lock_election_services(grpc_server: grpc.aio.Server, client: KVClient) -> None:
    """Register Lock and Election on ``grpc_server``; they run the recipes through ``client``,
    connected to the member itself."""
    v3lock_pb2_grpc.add_LockServicer_to_server(LockService(client), grpc_server)
    v3election_pb2_grpc.add_ElectionServicer_to_server(ElectionService(client), grpc_server)
