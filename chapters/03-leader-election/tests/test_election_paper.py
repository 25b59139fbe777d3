"""Leader election, one test per sentence of the Raft paper (Ongaro & Ousterhout, 2014).

In the spirit of etcd's ``raft_paper_test.go``: each test quotes the rule it checks, drives a
node (or a small network) into the situation, and looks at what comes out -- its role, term
and vote, the messages in its Ready, and the event stream. PreVote and CheckQuorum are off
here (plain Raft); ``test_prevote_checkquorum.py`` covers them.
"""

from __future__ import annotations

import random

import pytest

from kv.raft import Config, Entry, HardState, MessageType, RawNode, Role
from tests.raftnet import (
    Network,
    drain,
    entries,
    log_with,
    message,
    new_node,
    of_type,
    storage_with_log,
)

M = MessageType


def ticks_until_campaign(node: RawNode, limit: int = 1000) -> int:
    """Tick a follower until it campaigns; how many ticks that took."""
    for elapsed in range(1, limit + 1):
        node.tick()
        if node.role is not Role.FOLLOWER:
            return elapsed
    raise AssertionError("never campaigned")


# -- §5.1: terms ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE, Role.LEADER])
def test_a_node_that_sees_a_higher_term_updates_its_term_and_reverts_to_follower(
    role: Role,
) -> None:
    """§5.1: "If a candidate or leader discovers that its term is out of date, it immediately
    reverts to follower state." Figure 2: "If RPC request or response contains term T >
    currentTerm: set currentTerm = T, convert to follower"."""
    node, storage = new_node(1)
    if role is not Role.FOLLOWER:
        node.campaign()
    if role is Role.LEADER:
        drain(node, storage)
        node.step(message(M.VOTE_RESP, 2, 1, term=1))
        assert node.role is Role.LEADER
    assert node.role is role

    node.step(message(M.APP, 2, 1, term=5))

    assert node.role is Role.FOLLOWER
    assert node.term == 5
    assert node.lead == 2
    assert node.raft.vote == 0, "a new term starts without a vote"


def test_a_node_rejects_nothing_silently_but_ignores_requests_from_an_older_term() -> None:
    """§5.1: "If a server receives a request with a stale term number, it rejects the
    request." An AppendEntries of an older term changes nothing."""
    node, _storage = new_node(1, storage=storage_with_log([1, 2, 3], [1, 2], term=3))
    node.step(message(M.APP, 2, 1, term=2, index=2, log_term=2, entries=tuple(entries(2, start=3))))
    assert node.term == 3
    assert node.raft.log.last_index() == 2
    assert node.lead == 0


# -- §5.2: leader election ------------------------------------------------------------------


def test_a_follower_that_hears_nothing_for_an_election_timeout_becomes_candidate() -> None:
    """§5.2: "If a follower receives no communication over a period of time called the
    election timeout, then it assumes there is no viable leader and begins an election to
    choose a new leader." And: "a follower increments its current term and transitions to
    candidate state. It then votes for itself and issues RequestVote RPCs in parallel to each
    of the other servers in the cluster"."""
    node, storage = new_node(1, voters=[1, 2, 3], storage=storage_with_log([1, 2, 3], [1, 1]))

    ticks = ticks_until_campaign(node)

    assert 10 <= ticks < 20
    assert node.role is Role.CANDIDATE
    assert node.term == 2
    assert node.raft.vote == 1, "it votes for itself"
    votes = of_type(drain(node, storage), M.VOTE)
    assert [(m.to, m.term, m.index, m.log_term) for m in votes] == [(2, 2, 2, 1), (3, 2, 2, 1)]


def test_a_candidate_counts_its_own_vote_only_once_it_is_persisted() -> None:
    """Figure 2: persistent state is "updated on stable storage before responding to RPCs".
    The candidate's vote for itself is part of that state."""
    node, storage = new_node(1, voters=[1])
    node.campaign()
    assert node.role is Role.CANDIDATE, "a one-node cluster still waits for its vote to persist"
    ready = node.ready()
    assert ready.hard_state == HardState(term=1, vote=1, commit=0)
    assert ready.must_sync
    storage.set_hard_state(ready.hard_state)
    node.advance(ready)
    assert node.role is Role.LEADER


def test_election_timeouts_are_random_in_one_to_two_election_timeouts() -> None:
    """§5.2: "Raft uses randomized election timeouts ... election timeouts are chosen
    randomly from a fixed interval". etcd's interval is [election_tick, 2 * election_tick)."""
    seen = set()
    for seed in range(200):
        node, _ = new_node(1, seed=seed, election_tick=10)
        seen.add(ticks_until_campaign(node))
    assert seen <= set(range(10, 20))
    assert len(seen) >= 8, f"timeouts barely vary: {sorted(seen)}"


def test_the_election_timeout_is_drawn_again_after_each_election() -> None:
    """§5.2: "each candidate restarts its randomized election timeout at the start of an
    election"."""
    node, _ = new_node(1, seed=3)
    timeouts = set()
    for _ in range(30):
        ticks_until_campaign(node) if node.role is Role.FOLLOWER else None
        timeouts.add(node.raft.randomized_election_timeout)
        node.step(message(M.APP, 2, 1, term=node.term + 1))  # back to follower
    assert len(timeouts) > 3
    assert all(10 <= timeout < 20 for timeout in timeouts)


def test_the_same_seed_gives_the_same_run() -> None:
    """The core is deterministic: same state, same inputs, same seed -> same outputs."""

    def run(seed: int) -> list[str]:
        net = Network([1, 2, 3, 4, 5], seed=seed)
        net.tick_all(60)
        return net.event_lines()

    assert run(11) == run(11)
    assert run(11) != run(12)


@pytest.mark.parametrize(
    ("size", "votes", "expected"),
    [
        (1, {}, Role.LEADER),
        (3, {2: True, 3: True}, Role.LEADER),
        (3, {2: True}, Role.LEADER),
        (5, {2: True, 3: True, 4: True, 5: True}, Role.LEADER),
        (5, {2: True, 3: True}, Role.LEADER),
        (5, {2: True}, Role.CANDIDATE),
        (5, {2: True, 3: False}, Role.CANDIDATE),
        (5, {2: False, 3: False, 4: True}, Role.CANDIDATE),
        (3, {2: False, 3: False}, Role.FOLLOWER),
        (5, {2: False, 3: False, 4: False}, Role.FOLLOWER),
        (5, {2: True, 3: False, 4: False, 5: False}, Role.FOLLOWER),
    ],
)
def test_a_candidate_with_votes_from_a_majority_becomes_leader(
    size: int, votes: dict[int, bool], expected: Role
) -> None:
    """§5.2: "A candidate wins an election if it receives votes from a majority of the servers
    in the full cluster for the same term." A candidate that can no longer reach a majority
    gives up (etcd) and waits as a follower; otherwise it keeps waiting."""
    voters = list(range(1, size + 1))
    node, storage = new_node(1, voters=voters)
    node.campaign()
    drain(node, storage)  # persists its vote, which counts its own vote
    for voter, granted in votes.items():
        node.step(message(M.VOTE_RESP, voter, 1, term=1, reject=not granted))
    assert node.role is expected
    assert node.term == 1


def test_a_new_leader_sends_append_entries_to_establish_its_authority() -> None:
    """§5.2: "Once a candidate wins an election, it becomes leader. It then sends heartbeat
    messages to all of the other servers to establish its authority and prevent new
    elections." etcd's leader appends an empty entry of its term and sends it (§8)."""
    node, storage = new_node(1)
    node.campaign()
    drain(node, storage)
    node.step(message(M.VOTE_RESP, 2, 1, term=1))
    assert node.role is Role.LEADER
    appends = of_type(drain(node, storage), M.APP)
    assert [m.to for m in appends] == [2, 3]
    assert all(m.entries == (Entry(term=1, index=1),) for m in appends)


def test_a_leader_sends_heartbeats_every_heartbeat_interval() -> None:
    """§5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries)
    to all followers in order to maintain their authority"."""
    net = Network([1, 2, 3], heartbeat_tick=2)
    net.elect(1)
    leader, storage = net[1], net.storage(1)
    leader.tick()
    assert not of_type(drain(leader, storage), M.HEARTBEAT)
    leader.tick()
    heartbeats = of_type(drain(leader, storage), M.HEARTBEAT)
    assert [(m.to, m.term, m.entries) for m in heartbeats] == [(2, 1, ()), (3, 1, ())]


def test_a_follower_that_keeps_hearing_from_the_leader_never_campaigns() -> None:
    """§5.2: "A server remains in follower state as long as it receives valid RPCs from a
    leader or candidate"."""
    net = Network([1, 2, 3])
    net.elect(1)
    net.tick_all(100)
    assert net.leader() == 1
    assert net.terms() == {1: 1, 2: 1, 3: 1}


def test_a_candidate_that_hears_from_the_new_leader_of_its_term_becomes_follower() -> None:
    """§5.2: "If the AppendEntries RPC is from another server claiming to be leader and the
    leader's term is at least as large as the candidate's current term, then the candidate
    recognizes the leader as legitimate and returns to follower state"."""
    node, _storage = new_node(1)
    node.campaign()
    node.step(message(M.APP, 2, 1, term=1))
    assert node.role is Role.FOLLOWER
    assert node.lead == 2
    assert node.term == 1


def test_a_split_vote_ends_in_a_new_election_at_a_higher_term() -> None:
    """§5.2: "When this happens, each candidate will time out and start a new election by
    incrementing its term and initiating another round of RequestVote RPCs"."""
    node, storage = new_node(1, voters=[1, 2, 3, 4])
    node.campaign()
    drain(node, storage)
    node.step(message(M.VOTE_RESP, 2, 1, term=1, reject=True))  # 1 of 4: undecided
    assert node.role is Role.CANDIDATE
    ticks_until_campaign_again = 0
    while node.term == 1:
        node.tick()
        ticks_until_campaign_again += 1
    assert node.role is Role.CANDIDATE
    assert node.term == 2
    assert 10 <= ticks_until_campaign_again < 20
    assert len(of_type(drain(node, storage), M.VOTE)) == 3


def test_exactly_one_leader_emerges_in_a_cluster_started_cold() -> None:
    """§5.2 Election Safety: "at most one leader can be elected in a given term." With random
    timeouts one node usually times out first and wins."""
    for seed in range(20):
        net = Network([1, 2, 3, 4, 5], seed=seed)
        net.tick_all(40)
        leaders = [i for i, role in net.roles().items() if role is Role.LEADER]
        assert len(leaders) == 1, f"seed {seed}: {net.roles()}"
        leader = leaders[0]
        assert all(net[i].lead == leader for i in net.ids()), f"seed {seed}"


# -- voting: Figure 2, RequestVote RPC, receiver implementation ---------------------------------


def test_a_node_grants_at_most_one_vote_per_term() -> None:
    """§5.2: "Each server will vote for at most one candidate in a given term, on a
    first-come-first-served basis"."""
    node, storage = new_node(1)
    node.step(message(M.VOTE, 2, 1, term=1))
    node.step(message(M.VOTE, 3, 1, term=1))
    node.step(message(M.VOTE, 2, 1, term=1))  # a retry from the same candidate
    responses = of_type(drain(node, storage), M.VOTE_RESP)
    assert [(m.to, m.reject) for m in responses] == [(2, False), (3, True), (2, False)]
    assert node.raft.vote == 2
    assert storage.hard_state.vote == 2


@pytest.mark.parametrize(
    ("candidate_last", "granted"),
    [
        ((2, 3), True),  # same last term, same length
        ((2, 4), True),  # same last term, longer
        ((2, 2), False),  # same last term, shorter
        ((3, 1), True),  # later last term, even if shorter
        ((1, 3), False),  # earlier last term, even if as long
        ((1, 9), False),  # earlier last term, even if much longer
    ],
)
def test_a_vote_is_refused_to_a_candidate_whose_log_is_less_up_to_date(
    candidate_last: tuple[int, int], granted: bool
) -> None:
    """§5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
    candidate. ... If the logs have last entries with different terms, then the log with the
    later term is more up-to-date. If the logs end with the same term, then whichever log is
    longer is more up-to-date." The voter's log here ends at index 3, term 2."""
    node, storage = new_node(1, storage=storage_with_log([1, 2, 3], [1, 2, 2]))
    last_term, last_index = candidate_last
    node.step(message(M.VOTE, 2, 1, term=3, log_term=last_term, index=last_index))
    (response,) = of_type(drain(node, storage), M.VOTE_RESP)
    assert response.reject is not granted
    assert node.term == 3, "the higher term is adopted either way"
    assert node.raft.vote == (2 if granted else 0)


@pytest.mark.parametrize(
    ("last", "expected"),
    [((3, 2), True), ((3, 3), True), ((3, 1), False), ((4, 1), True), ((2, 9), False)],
)
def test_is_up_to_date_compares_last_terms_then_lengths(
    last: tuple[int, int], expected: bool
) -> None:
    """§5.4.1's comparison, for a log ending at (index 2, term 3)."""
    term, index = last
    assert log_with([1, 3]).is_up_to_date(index, term) is expected


def test_a_vote_is_answered_only_after_it_is_persisted() -> None:
    """Figure 2: votedFor is persistent state, "updated on stable storage before responding
    to RPCs" -- else a crash could let the node vote twice in one term."""
    node, _storage = new_node(1)
    node.step(message(M.VOTE, 2, 1, term=4))
    ready = node.ready()
    assert ready.hard_state == HardState(term=4, vote=2, commit=0)
    assert ready.must_sync
    assert [(m.type, m.to) for m in ready.messages] == [(M.VOTE_RESP, 2)]


def test_a_restarted_node_remembers_its_vote() -> None:
    """A node that crashes after voting must not vote for someone else in the same term."""
    node, storage = new_node(1)
    node.step(message(M.VOTE, 2, 1, term=4))
    drain(node, storage)

    restarted = RawNode(Config(id=1, pre_vote=False, check_quorum=False), storage, random.Random(0))
    assert (restarted.term, restarted.raft.vote) == (4, 2)
    restarted.step(message(M.VOTE, 3, 1, term=4))
    (response,) = of_type(drain(restarted, storage), M.VOTE_RESP)
    assert response.reject


def test_a_vote_resets_the_election_timer() -> None:
    """Figure 2, Followers: a follower converts to candidate only if the election timeout
    elapses "without receiving AppendEntries RPC from current leader or granting vote to
    candidate"."""
    node, _storage = new_node(1, seed=5)
    timeout = node.raft.randomized_election_timeout
    for _ in range(timeout - 1):
        node.tick()
    node.step(message(M.VOTE, 2, 1, term=1))
    for _ in range(timeout - 1):
        node.tick()
    assert node.role is Role.FOLLOWER


# -- the event stream -------------------------------------------------------------------------


def test_the_event_stream_tells_the_story_of_an_election() -> None:
    """The structured events read as the election happened."""
    net = Network([1, 2, 3])
    net.events.clear()
    net.campaign(1)
    assert net.event_lines() == [
        "n1 became candidate at term 1",
        "n2 became follower at term 1",
        "n2 granted vote to n1 at term 1",
        "n3 became follower at term 1",
        "n3 granted vote to n1 at term 1",
        "n1 became leader at term 1",
        "n1 committed index 1",
        "n2 committed index 1",
        "n3 committed index 1",
    ]
