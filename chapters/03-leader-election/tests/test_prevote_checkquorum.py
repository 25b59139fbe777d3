"""etcd's two guards around elections: PreVote (thesis §9.6) and CheckQuorum (thesis §6.2).

Plain Raft has a weakness: a node cut off from the others keeps timing out and raising its
term. When it comes back, its higher term forces the healthy leader to step down, for
nothing. PreVote makes a node ask "would you vote for me?" first, without raising its term;
CheckQuorum makes a leader that lost its majority step down, and makes followers that hear
from a live leader ignore vote requests (a "leader lease").
"""

from __future__ import annotations

from kv.raft import MessageType, Role
from kv.raft.events import BecameCandidate, QuorumLost, VoteIgnored
from tests.raftnet import Network, drain, message, new_node, of_type, storage_with_log

M = MessageType


# -- PreVote -----------------------------------------------------------------------------------


def test_prevote_keeps_a_partitioned_node_from_disturbing_a_stable_leader() -> None:
    """Thesis §9.6: "a server first asks whether its log is up-to-date enough to get votes ...
    only if the server believes it can get votes from a majority does it increment its term
    and start a normal election"."""
    net = Network([1, 2, 3], pre_vote=True)
    net.elect(1)
    net.isolate(3)
    net.tick(3, 100)
    assert net[3].role is Role.PRE_CANDIDATE
    assert net[3].term == 1, "pre-campaigning never raises the term"
    net.heal()
    net.tick_all(30)
    assert net.leader() == 1
    assert net.terms() == {1: 1, 2: 1, 3: 1}
    assert not [e for e in net.events if isinstance(e, BecameCandidate) and e.term > 1]


def test_without_prevote_a_returning_node_deposes_the_leader() -> None:
    """The problem PreVote solves, shown in plain Raft."""
    net = Network([1, 2, 3], pre_vote=False)
    net.elect(1)
    net.isolate(3)
    net.tick(3, 100)
    assert net[3].term > 5
    net.heal()
    net.tick(3, 40)
    assert net[1].term > 1, "the leader was forced into a new term"


def test_a_prevote_changes_neither_the_term_nor_the_vote_of_the_voter() -> None:
    """A pre-vote for a later term is granted on the log check alone (the voter may have
    voted in its own term already) and records nothing: no hard state to persist."""
    node, storage = new_node(1, pre_vote=True)
    node.step(message(M.VOTE, 2, 1, term=1))
    drain(node, storage)
    node.step(message(M.PRE_VOTE, 3, 1, term=2))
    ready = node.ready()
    assert ready.hard_state is None
    (response,) = ready.messages
    assert (response.type, response.to, response.term, response.reject) == (
        M.PRE_VOTE_RESP,
        3,
        2,
        False,
    ), "granted, with the term of the request"
    assert (node.term, node.raft.vote) == (1, 2)


def test_a_prevote_is_refused_to_a_node_whose_log_is_behind() -> None:
    node, storage = new_node(1, storage=storage_with_log([1, 2, 3], [1, 2, 2]), pre_vote=True)
    node.step(message(M.PRE_VOTE, 3, 1, term=3, index=2, log_term=2))
    (response,) = of_type(drain(node, storage), M.PRE_VOTE_RESP)
    assert response.reject
    assert node.term == 2


def test_a_pre_candidate_raises_its_term_only_after_winning_the_pre_vote() -> None:
    node, storage = new_node(1, pre_vote=True)
    node.campaign()
    assert (node.role, node.term, node.raft.vote) == (Role.PRE_CANDIDATE, 0, 0)
    requests = of_type(drain(node, storage), M.PRE_VOTE)
    assert [(m.to, m.term) for m in requests] == [(2, 1), (3, 1)]
    node.step(message(M.PRE_VOTE_RESP, 2, 1, term=1))
    assert (node.role, node.term, node.raft.vote) == (Role.CANDIDATE, 1, 1)
    assert [(m.to, m.term) for m in of_type(drain(node, storage), M.VOTE)] == [(2, 1), (3, 1)]


def test_a_pre_candidate_that_loses_goes_back_to_follower_in_its_own_term() -> None:
    node, storage = new_node(1, pre_vote=True)
    node.campaign()
    drain(node, storage)
    node.step(message(M.PRE_VOTE_RESP, 2, 1, term=0, reject=True))
    node.step(message(M.PRE_VOTE_RESP, 3, 1, term=0, reject=True))
    assert (node.role, node.term) == (Role.FOLLOWER, 0)


def test_a_node_in_a_later_term_rejects_a_stale_prevote_and_tells_its_term() -> None:
    """The pre-candidate learns the newer term from the rejection and can move on."""
    node, storage = new_node(1, storage=storage_with_log([1, 2, 3], [1, 1], term=5), pre_vote=True)
    node.step(message(M.PRE_VOTE, 2, 1, term=3, index=9, log_term=4))
    (response,) = of_type(drain(node, storage), M.PRE_VOTE_RESP)
    assert (response.reject, response.term) == (True, 5)


# -- CheckQuorum -------------------------------------------------------------------------------


def test_check_quorum_steps_down_a_leader_that_lost_its_majority() -> None:
    """Thesis §6.2: "a leader steps down if an election timeout elapses without a successful
    round of heartbeats to a majority of its cluster"."""
    net = Network([1, 2, 3], check_quorum=True)
    net.elect(1)
    net.isolate(1)
    ticks = 0
    while net[1].role is Role.LEADER:
        net.tick(1)
        ticks += 1
        assert ticks <= 20, "still leader after two election timeouts"
    assert net[1].role is Role.FOLLOWER
    assert net[1].term == 1
    assert any(isinstance(e, QuorumLost) and e.node == 1 for e in net.events)
    assert "n1 lost its quorum at term 1 and stepped down" in net.event_lines()


def test_check_quorum_keeps_a_leader_that_hears_from_a_majority() -> None:
    net = Network([1, 2, 3, 4, 5], check_quorum=True)
    net.elect(1)
    net.crash(4)
    net.crash(5)
    net.tick_all(100)
    assert net.leader() == 1
    assert net[1].term == 1


def test_without_check_quorum_an_isolated_leader_stays_leader() -> None:
    net = Network([1, 2, 3], check_quorum=False)
    net.elect(1)
    net.isolate(1)
    net.tick(1, 100)
    assert net[1].role is Role.LEADER


def test_a_follower_that_hears_from_its_leader_ignores_vote_requests() -> None:
    """Thesis §4.2.3: "if a server receives a RequestVote request within the minimum election
    timeout of hearing from a current leader, it does not update its term or grant its
    vote"."""
    net = Network([1, 2, 3], check_quorum=True)
    net.elect(1)
    net.events.clear()
    net.deliver(message(M.VOTE, 3, 2, term=5, index=1, log_term=1))
    assert net[2].term == 1
    assert [str(e) for e in net.events if isinstance(e, VoteIgnored)] == [
        "n2 ignored vote request from n3 for term 5 at term 1: leader lease"
    ]
    assert not of_type(net.process_ready(2), M.VOTE_RESP)


def test_after_an_election_timeout_of_silence_the_lease_is_over() -> None:
    node, storage = new_node(2, check_quorum=True)
    node.step(message(M.HEARTBEAT, 1, 2, term=1))
    for _ in range(10):
        node.tick()
    node.step(message(M.VOTE, 3, 2, term=5))
    (response,) = of_type(drain(node, storage), M.VOTE_RESP)
    assert not response.reject
    assert node.term == 5


def test_a_stale_leader_learns_the_newer_term_from_its_followers() -> None:
    """With CheckQuorum a node may ignore vote requests, so a node that ran ahead in terms
    must be able to tell the leader otherwise: it answers the leader's (older-term) heartbeat
    with its own term, and the leader steps down so the cluster can move on."""
    net = Network([1, 2, 3], check_quorum=True)
    net.elect(1)
    net.isolate(3)
    net.tick(3, 40)
    assert net[3].term > 1
    net.heal()
    net.tick(1)  # a heartbeat reaches 3, which answers with its higher term
    assert net[1].role is Role.FOLLOWER
    net.tick_all(60)
    leader = net.leader()
    assert leader is not None
    assert all(net[i].term == net[leader].term for i in net.ids())


def test_prevote_and_check_quorum_together_keep_the_cluster_undisturbed() -> None:
    """etcd's production setting: a partitioned node rejoins and nothing happens."""
    net = Network([1, 2, 3, 4, 5], pre_vote=True, check_quorum=True)
    net.elect(1)
    net.isolate(5)
    net.tick_all(200)
    assert net.leader() == 1
    net.heal()
    net.tick_all(50)
    assert net.leader() == 1
    assert set(net.terms().values()) == {1}
    net.propose(1, b"still here")
    assert net.applied(5) == [b"still here"]


def test_the_leader_of_a_minority_partition_steps_down_and_the_majority_elects_anew() -> None:
    net = Network([1, 2, 3, 4, 5], pre_vote=True, check_quorum=True)
    net.elect(1)
    for a in (1, 2):
        for b in (3, 4, 5):
            net.cut(a, b)
    net.tick_all(60)
    assert net[1].role is not Role.LEADER, "it stepped down (and now pre-campaigns in vain)"
    assert net[1].term == 1
    majority_leader = net.leader()
    assert majority_leader in (3, 4, 5)
    net.heal()
    net.tick_all(30)
    assert net.leader() == majority_leader
    assert len({net[i].term for i in net.ids()}) == 1
