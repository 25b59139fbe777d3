"""The clients' side of a member's Raft loop batches writes (`kv.server.replica.clients.proposals`):
each write waits in a queue until the loop's next turn, and `step_queued` hands the core all
of them as one proposal, so one Ready (one log write, one fsync) carries them all.

Each test drives `Proposals` over a real `RawNode` that leads alone, with no Ready loop: the
test itself plays the loop's part (`step_queued`, then the Ready), so nothing depends on
timing.
"""

from __future__ import annotations

import asyncio

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.raft import Message, MessageType, RawNode, Role
from kv.server import errors
from kv.server.errors import EtcdError
from kv.server.replica.clients.proposals import Proposals
from kv.server.replica.timing import Timing
from tests.raftnet import handle_ready, lone_leader

WRITES = 5


def proposals_of(node: RawNode, wakes: list[None]) -> Proposals:
    return Proposals(
        node,
        Timing(),
        wake=lambda: wakes.append(None),
        check_serving=lambda: None,
        applied=lambda: node.applied_index,
    )


def put(key: bytes) -> InternalRaftRequest:
    return InternalRaftRequest(put=rpc_pb2.PutRequest(key=key, value=b"v"))


async def test_writes_proposed_meanwhile_go_into_one_ready_together() -> None:
    node, storage = lone_leader()
    wakes: list[None] = []
    proposals = proposals_of(node, wakes)
    writers = [asyncio.ensure_future(proposals.propose(put(b"k%d" % i))) for i in range(WRITES)]
    await asyncio.sleep(0)  # every writer queues its write and wakes the loop
    assert len(wakes) == WRITES and not node.has_ready()  # queued, not in the core yet
    proposals.step_queued()
    assert len(handle_ready(node, storage).entries) == WRITES
    for writer in writers:
        writer.cancel()


async def test_writes_queued_by_a_leader_deposed_before_the_loop_turn_fail_as_dropped() -> None:
    node, _ = lone_leader()
    proposals = proposals_of(node, [])
    writers = [asyncio.ensure_future(proposals.propose(put(b"k%d" % i))) for i in range(2)]
    await asyncio.sleep(0)  # both writes are queued
    # A candidate of a later term asks for a vote: the leader steps down and, until someone
    # wins, knows no leader; the core drops what is proposed to it then (etcd: ErrProposalDropped).
    vote = Message(
        type=MessageType.VOTE,
        from_=2,
        to=1,
        term=node.term + 1,
        log_term=node.term,
        index=node.last_index(),
    )
    node.step(vote)
    assert node.role is Role.FOLLOWER and not node.lead
    proposals.step_queued()
    for writer in writers:
        with pytest.raises(EtcdError) as raised:
            await writer
        assert raised.value is errors.PROPOSAL_DROPPED
    assert proposals.failed == 2
