"""Changing the cluster: etcd's MemberAdd, MemberRemove, MemberUpdate, MemberPromote and
MoveLeader (chapter 5).

Each request becomes one ``ConfChange`` proposed through Raft (one member at a time: the
Raft thesis §4.1 shows that any two majorities of configurations differing by one member
overlap, so no joint consensus is needed), and is answered once applied here. Before
proposing, a member checks what etcd checks (``etcdserver/server.go``,
``mayAddMember``/``mayRemoveMember``/``mayPromoteMember``, with ``--strict-reconfig-check``
on, its default), so that an operator cannot talk a healthy cluster into losing its quorum:

* a new *voter* is refused unless enough members have started (published their name) to
  keep a quorum while it catches up; any new member, learner or voter, is refused unless
  every voter has been connected for the last 5 s; learners are limited to etcd's one;
* removing a voter is refused if the voters connected would then be too few;
* a learner is promoted only when its log is within 90% of the leader's.

"Connected" is the peer transport's view (`kv.server.peers.transport`): every member keeps a
connection to every peer and knows since when it has been up, so any member can make these checks,
as in etcd. Only the leader knows how far a learner's log is, so a follower forwards
MemberPromote to it (kv calls the leader's client URL; etcd forwards over its peer URLs).

A new member's id is etcd's: SHA-1 of its peer URLs and the time, so the same URLs added
again after a removal get a new id (a removed id never comes back).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from kv.api.etcdserverpb import rpc_pb2
from kv.membership import Member
from kv.raft import ConfChange, ConfChangeType
from kv.server import errors
from kv.server.applied.members import encode_member
from kv.server.errors import EtcdError
from kv.server.flag_values import ConfigError, check_url
from kv.server.peers.transport import dial_target
from kv.server.replica.replica import Replica

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

#: etcd 3.4 allows one learner at a time (etcdserver/api/membership: maxLearners).
MAX_LEARNERS = 1
#: A learner may be promoted once its match index is within 90% of the leader's.
LEARNER_READY_PERCENT = 0.9
#: How long every voter must have been connected before a change (etcd: HealthInterval).
HEALTH_INTERVAL_SECONDS = 5.0


def new_member_id(peer_urls: tuple[str, ...], now: float) -> int:
    """etcd's id for a member added at ``now`` (``membership.NewMember`` with no cluster
    name): SHA-1 of the sorted peer URLs and the Unix time in seconds."""
    data = "".join(sorted(peer_urls)).encode() + str(int(now)).encode()
    return int.from_bytes(hashlib.sha1(data).digest()[:8], "big")


class Reconfiguration:
    """The Cluster service's changes and MoveLeader, for one member."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def _header(self) -> rpc_pb2.ResponseHeader:
        return self.replica.member_list().header

    def _members(self) -> list[rpc_pb2.Member]:
        return list(self.replica.member_list().members)

    # --8<-- [start:member_add]
    async def member_add(self, request: rpc_pb2.MemberAddRequest) -> rpc_pb2.MemberAddResponse:
        self.replica.check_not_learner()
        urls = valid_urls(request.peerURLs)
        members = self.replica.members.list()
        # etcd's strict checks, in its order (mayAddMember), then what it checks on apply.
        if not request.isLearner and not ready_to_add_voter(members):
            raise errors.NOT_ENOUGH_STARTED_MEMBERS
        if not self._voters_connected(members):
            raise errors.UNHEALTHY
        if any(set(urls) & set(member.peer_urls) for member in members):
            raise errors.PEER_URL_EXIST
        if request.isLearner and sum(m.is_learner for m in members) >= MAX_LEARNERS:
            raise errors.TOO_MANY_LEARNERS
        member = Member(
            id=new_member_id(urls, time.time()),
            name="",
            peer_urls=urls,
            is_learner=request.isLearner,
        )
        kind = ConfChangeType.ADD_LEARNER_NODE if member.is_learner else ConfChangeType.ADD_NODE
        await self.replica.proposals.propose_conf_change(
            ConfChange(kind, member.id, context=encode_member(member))
        )
        return rpc_pb2.MemberAddResponse(
            header=self._header(),
            member=rpc_pb2.Member(ID=member.id, peerURLs=urls, isLearner=member.is_learner),
            members=self._members(),
        )

    # --8<-- [end:member_add]

    async def member_remove(
        self, request: rpc_pb2.MemberRemoveRequest
    ) -> rpc_pb2.MemberRemoveResponse:
        self.replica.check_not_learner()
        member = self._existing(request.ID)
        if not member.is_learner:
            self._check_may_remove_voter(member.id)
        await self.replica.proposals.propose_conf_change(
            ConfChange(ConfChangeType.REMOVE_NODE, member.id)
        )
        return rpc_pb2.MemberRemoveResponse(header=self._header(), members=self._members())

    async def member_update(
        self, request: rpc_pb2.MemberUpdateRequest
    ) -> rpc_pb2.MemberUpdateResponse:
        self.replica.check_not_learner()
        member = self._existing(request.ID)
        # etcd 3.4 accepts empty or invalid URLs here, and every member then panics applying
        # them; kv refuses them as MemberAdd does (a deliberate difference).
        urls = valid_urls(request.peerURLs)
        updated = Member(member.id, member.name, urls, (), member.is_learner)
        change = ConfChange(ConfChangeType.UPDATE_NODE, member.id, context=encode_member(updated))
        await self.replica.proposals.propose_conf_change(change)
        return rpc_pb2.MemberUpdateResponse(header=self._header(), members=self._members())

    async def member_promote(
        self, request: rpc_pb2.MemberPromoteRequest
    ) -> rpc_pb2.MemberPromoteResponse:
        self.replica.check_not_learner()
        member = self._existing(request.ID)
        if not member.is_learner:
            raise errors.MEMBER_NOT_LEARNER
        if not self.replica.is_leader:
            return await self._forward("MemberPromote", request, rpc_pb2.MemberPromoteResponse)
        if not self._learner_ready(member.id):
            raise errors.LEARNER_NOT_READY
        voter = Member(member.id, member.name, member.peer_urls, member.client_urls, False)
        change = ConfChange(ConfChangeType.ADD_NODE, member.id, context=encode_member(voter))
        await self.replica.proposals.propose_conf_change(change)
        return rpc_pb2.MemberPromoteResponse(header=self._header(), members=self._members())

    # --8<-- [start:move_leader]
    async def move_leader(self, request: rpc_pb2.MoveLeaderRequest) -> rpc_pb2.MoveLeaderResponse:
        """Hand leadership to ``targetID`` (Raft thesis §3.10) and wait until it leads."""
        replica = self.replica
        replica.check_not_learner()
        replica.check_leader()
        target = replica.members.get(request.targetID)
        if target is None or target.is_learner:
            raise errors.BAD_LEADER_TRANSFEREE
        if target.id != replica.member_id:
            replica.transfer_leader(target.id)
            deadline = asyncio.get_running_loop().time() + replica.timing.request_timeout
            while replica.leader != target.id:
                if asyncio.get_running_loop().time() > deadline:
                    raise errors.LEADERSHIP_TRANSFER_TIMEOUT
                await asyncio.sleep(replica.timing.tick_seconds)
            log.info("leadership transferred from %x to %x", replica.member_id, target.id)
        return rpc_pb2.MoveLeaderResponse()  # etcd 3.4: no header at all

    # --8<-- [end:move_leader]

    def _existing(self, member_id: int) -> Member:
        member = self.replica.members.get(member_id)  # a removed member is not found either
        if member is None:
            raise errors.MEMBER_NOT_FOUND
        return member

    # --8<-- [start:strict_checks]
    def _check_may_remove_voter(self, member_id: int) -> None:
        """etcd's ``mayRemoveMember``: enough started voters must remain, and unless the
        voter is already unreachable (removing it changes nothing for the quorum), the
        voters connected for the last 5 s must still be a majority without it."""
        voters = [m for m in self.replica.members.list() if not m.is_learner]
        remaining = [voter for voter in voters if voter.id != member_id]
        started = sum(1 for voter in remaining if voter.name)
        if not remaining or started < len(remaining) // 2 + 1:
            raise errors.NOT_ENOUGH_STARTED_MEMBERS
        transport = self.replica.transport
        if member_id != self.replica.member_id and member_id not in transport.connected():
            return
        active = transport.connected_since(_loop_time() - HEALTH_INTERVAL_SECONDS)
        active.add(self.replica.member_id)
        connected = sum(1 for voter in voters if voter.id in active)
        if connected - 1 < 1 + (len(voters) - 1) // 2:
            raise errors.UNHEALTHY

    def _voters_connected(self, members: list[Member]) -> bool:
        """etcd's strict check before any add: every other voter has been connected without
        a break for the last 5 s (so not right after a restart either)."""
        active = self.replica.transport.connected_since(_loop_time() - HEALTH_INTERVAL_SECONDS)
        return all(
            member.id in active
            for member in members
            if not member.is_learner and member.id != self.replica.member_id
        )

    def _learner_ready(self, member_id: int) -> bool:
        progress = self.replica.raw.status().progress
        leader_match = self.replica.last_index
        learner = progress.get(member_id)
        return learner is not None and learner.match >= leader_match * LEARNER_READY_PERCENT

    # --8<-- [end:strict_checks]

    async def _forward(self, method: str, request: Message, response_type: type[M]) -> M:
        """Send a Cluster call to the leader and relay its answer (etcd forwards some of
        them over its peer URLs; kv calls the leader's client URL). The header names the
        member that was asked, as etcd's does."""
        leader = self.replica.members.get(self.replica.leader)
        if leader is None or not leader.client_urls:
            raise errors.NO_LEADER
        async with grpc.aio.insecure_channel(dial_target(leader.client_urls[0])) as channel:
            call = channel.unary_unary(
                f"/etcdserverpb.Cluster/{method}",
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_type.FromString,
            )
            try:
                response: M = await call(request, timeout=self.replica.timing.request_timeout)
            except grpc.aio.AioRpcError as error:
                raise EtcdError.of_failed_call(error) from None
        response.header.CopyFrom(self._header())  # type: ignore[attr-defined]
        return response


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def valid_urls(urls: Sequence[str]) -> tuple[str, ...]:
    """The peer URLs of a MemberAdd/MemberUpdate, or etcd's error if any is unusable."""
    if not urls:
        raise errors.INVALID_MEMBER_URLS
    for url in urls:
        try:
            check_url(url)
        except ConfigError:
            raise errors.INVALID_MEMBER_URLS from None
    return tuple(urls)


# --8<-- [start:ready_to_add_voter]
def ready_to_add_voter(members: list[Member]) -> bool:
    """etcd's ``IsReadyToAddVotingMember``: after adding one more voter, would the started
    voters (those that published their name) still be a quorum?"""
    voters = [member for member in members if not member.is_learner]
    started = sum(1 for member in voters if member.name)
    total = len(voters) + 1
    if started == 1 and total == 2:
        return True  # a one-member cluster may always grow to two
    return started >= total // 2 + 1


# --8<-- [end:ready_to_add_voter]
