"""ReadIndex in the Raft core (thesis §6.4): linearizable reads without log writes.

The read is confirmed by a heartbeat round that a majority acknowledges, and a new leader
first commits an entry of its own term. (Chapter 4's "Reads"; the server's ReadIndex rounds
build on this.)
"""

from __future__ import annotations

from kv.raft import MessageType as M
from kv.raft import ReadOnlyOption, ReadState, Role
from tests.raftnet import Network, drain, message, new_node, of_type


def test_a_leader_confirms_a_read_with_a_heartbeat_round() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose(1, b"x")
    net.delivered.clear()
    net[1].read_index(b"read-1")
    net.stabilize()
    assert net.members[1].reads == [(b"read-1", 2)]
    heartbeats = of_type(net.delivered, M.HEARTBEAT)
    assert {(m.to, m.context) for m in heartbeats} == {(2, b"read-1"), (3, b"read-1")}


def test_a_follower_asks_the_leader_for_the_read_index() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose(2, b"x")
    net[3].read_index(b"read-3")
    net.stabilize()
    assert net.members[3].reads == [(b"read-3", 2)]
    assert net.members[1].reads == []


def test_a_leader_without_a_majority_confirms_nothing() -> None:
    """A deposed leader that does not know it yet must not answer: its acks never come."""
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(1)
    net[1].read_index(b"stale?")
    net.tick(1, 5)
    assert net.members[1].reads == []


def test_a_new_leader_answers_reads_only_after_committing_an_entry_of_its_term() -> None:
    """Thesis §6.4: the leader's commit index is only known to be current once it has
    committed an entry of its own term (the empty entry it appends on election)."""
    node, storage = new_node(1)
    node.campaign()
    drain(node, storage)
    node.step(message(M.VOTE_RESP, 2, 1, term=1))
    assert node.role is Role.LEADER
    drain(node, storage)
    node.read_index(b"early")
    assert not [m for m in drain(node, storage) if m.context == b"early"], "postponed"
    node.step(message(M.APP_RESP, 2, 1, term=1, index=1))  # the empty entry commits
    heartbeats = [m for m in of_type(drain(node, storage), M.HEARTBEAT) if m.context]
    assert [(m.to, m.context) for m in heartbeats] == [(2, b"early"), (3, b"early")]
    node.step(message(M.HEARTBEAT_RESP, 2, 1, term=1, context=b"early"))
    assert node.ready().read_states == (ReadState(index=1, request_ctx=b"early"),)


def test_an_acknowledgement_confirms_every_earlier_read_too() -> None:
    node, storage = new_node(1)
    node.campaign()
    drain(node, storage)
    node.step(message(M.VOTE_RESP, 2, 1, term=1))
    drain(node, storage)
    node.step(message(M.APP_RESP, 2, 1, term=1, index=1))
    drain(node, storage)
    node.read_index(b"first")
    node.read_index(b"second")
    drain(node, storage)
    node.step(message(M.HEARTBEAT_RESP, 3, 1, term=1, context=b"second"))
    assert [rs.request_ctx for rs in node.ready().read_states] == [b"first", b"second"]


def test_a_single_voter_answers_at_once() -> None:
    node, storage = new_node(1, voters=[1])
    node.campaign()
    drain(node, storage)
    node.read_index(b"solo")
    assert node.ready().read_states == (ReadState(index=1, request_ctx=b"solo"),)


def test_a_lease_based_read_skips_the_heartbeat_round() -> None:
    net = Network([1, 2, 3], check_quorum=True, read_only_option=ReadOnlyOption.LEASE_BASED)
    net.elect(1)
    net.delivered.clear()
    net[1].read_index(b"lease")
    net.stabilize()
    assert net.members[1].reads == [(b"lease", 1)]
    assert not of_type(net.delivered, M.HEARTBEAT)


def test_a_read_without_a_known_leader_is_dropped() -> None:
    node, storage = new_node(2)
    node.read_index(b"nobody")
    assert drain(node, storage) == []
