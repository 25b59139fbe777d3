"""Log replication and commitment in the Raft core (Raft §5.3-§5.5, Figures 2, 7 and 8).

Chapter 4's core tests: the log's rules (consistency check, conflict truncation, fast
backtracking), commitment by majority and only in the current term, persistence through the
Ready contract, crashes and restarts, and a seeded simulation that checks Raft's safety
properties (Figure 3). (Reads below a compaction are chapter 5's, in its
``test_snapshot_core.py``; the up-to-date comparison is chapter 3's.)
"""

from __future__ import annotations

import itertools
import random

import pytest

from kv.raft import (
    Entry,
    HardState,
    MessageType,
    ProposalDroppedError,
    Role,
)
from kv.raft.errors import UnavailableError
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


# -- the log ---------------------------------------------------------------------------------


def test_the_log_reads_terms_across_storage_and_the_unstable_tail() -> None:
    log = log_with([1, 1, 2], unstable=[3, 3])
    assert [log.term(i) for i in range(0, 6)] == [0, 1, 1, 2, 3, 3]
    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 5, 3)
    assert [e.index for e in log.entries(2)] == [2, 3, 4, 5]
    with pytest.raises(UnavailableError):
        log.term(6)


@pytest.mark.parametrize(
    ("index", "log_term", "new_terms", "accepted", "expected_terms"),
    [
        # prevLogIndex/prevLogTerm do not match: reject (Figure 2, rule 2)
        (3, 2, [3], False, [1, 2, 3]),
        (4, 3, [3], False, [1, 2, 3]),
        # matching, nothing new
        (3, 3, [], True, [1, 2, 3]),
        # matching, appending
        (3, 3, [4, 4], True, [1, 2, 3, 4, 4]),
        # matching, already there (idempotent)
        (1, 1, [2, 3], True, [1, 2, 3]),
        # matching, conflicting: truncate and append (rule 3 and 4)
        (1, 1, [4], True, [1, 4]),
        (2, 2, [4, 4, 4], True, [1, 2, 4, 4, 4]),
    ],
)
def test_maybe_append_checks_consistency_and_truncates_conflicts(
    index: int, log_term: int, new_terms: list[int], accepted: bool, expected_terms: list[int]
) -> None:
    """Figure 2, AppendEntries: "Reply false if log doesn't contain an entry at prevLogIndex
    whose term matches prevLogTerm"; "If an existing entry conflicts with a new one (same
    index but different terms), delete the existing entry and all that follow it"."""
    log = log_with([1, 2, 3])
    result = log.maybe_append(index, log_term, 0, entries(*new_terms, start=index + 1))
    assert (result is not None) is accepted
    if accepted:
        assert result == index + len(new_terms)
    assert [e.term for e in log.all_entries()] == expected_terms


def test_a_follower_commits_up_to_the_last_new_entry_at_most() -> None:
    """Figure 2: "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of
    last new entry)" -- not the end of the log, which may hold a stale tail."""
    log = log_with([1, 1, 1, 1])
    log.maybe_append(1, 1, 4, entries(1, start=2))
    assert log.committed == 2
    log.maybe_append(2, 1, 3, [])
    assert log.committed == 2
    log.maybe_append(3, 1, 3, [])
    assert log.committed == 3


def test_the_log_never_truncates_a_committed_entry() -> None:
    """Leader Completeness (§5.4): a committed entry stays."""
    log = log_with([1, 1, 1])
    log.commit_to(2)
    with pytest.raises(AssertionError):
        log.append(entries(2, start=2))
    with pytest.raises(AssertionError):
        log.maybe_append(1, 1, 0, entries(2, 2, start=2))


@pytest.mark.parametrize(
    ("terms", "index", "term", "expected"),
    [
        # The etcd example: a follower with a long tail of higher terms skips it in one go.
        ([1, 3, 3, 4, 4, 5, 5, 5, 6], 8, 3, (3, 3)),
        ([1, 3, 3, 4, 4, 5, 5, 5, 6], 9, 6, (9, 6)),
        ([1, 3, 3, 4, 4, 5, 5, 5, 6], 9, 5, (8, 5)),
        ([1, 3, 3, 4, 4, 5, 5, 5, 6], 5, 0, (0, 0)),
        ([2, 2, 2], 3, 1, (0, 0)),
    ],
)
def test_find_conflict_by_term_skips_entries_whose_term_rules_them_out(
    terms: list[int], index: int, term: int, expected: tuple[int, int]
) -> None:
    assert log_with(terms).find_conflict_by_term(index, term) == expected


# -- replication -------------------------------------------------------------------------------


def test_every_member_applies_the_same_commands_in_the_same_order() -> None:
    """State Machine Safety (Figure 3): if a server has applied a log entry at a given index,
    no other server will ever apply a different log entry for the same index."""
    net = Network([1, 2, 3, 4, 5])
    net.elect(1)
    commands = [f"put k{i}".encode() for i in range(20)]
    for i, command in enumerate(commands):
        net.propose(1 + i % 5, command)  # followers forward to the leader
    for member in net.ids():
        assert net.applied(member) == commands
        assert net.log(member) == net.log(1)


def test_a_follower_forwards_proposals_to_the_leader() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net[3].propose(b"from a follower")
    (forwarded,) = of_type(net.process_ready(3), M.PROP)
    assert (forwarded.to, forwarded.term) == (1, 0)


def test_a_proposal_without_a_leader_is_dropped() -> None:
    node, _ = new_node(1)
    with pytest.raises(ProposalDroppedError):
        node.propose(b"x")
    node.campaign()
    with pytest.raises(ProposalDroppedError):
        node.propose(b"x")


def test_an_entry_commits_once_a_majority_stores_it() -> None:
    """§5.3: "A log entry is committed once the leader that created the entry has replicated
    it on a majority of the servers"."""
    net = Network([1, 2, 3, 4, 5])
    net.elect(1)
    net.crash(4)
    net.crash(5)
    net.cut(1, 3)
    net.propose(1, b"x")
    assert net[1].raft.log.committed == 1, "2 of 5 is not a majority"
    net.heal()
    net.tick(1)  # a heartbeat round: 3 answers and catches up
    assert net[1].raft.log.committed == 2
    assert net.applied(3) == [b"x"]


def test_an_accepted_append_is_acknowledged_only_after_it_is_persisted() -> None:
    """Figure 2: log entries are persistent state, "updated on stable storage before
    responding to RPCs"; etcd's Ready hands out the entries and the acknowledgement together,
    and the acknowledgement is sent after the entries are written."""
    node, _ = new_node(2)
    node.step(message(M.APP, 1, 2, term=1, index=0, log_term=0, entries=(Entry(1, 1),)))
    ready = node.ready()
    assert ready.entries == (Entry(1, 1),)
    assert ready.must_sync
    assert [(m.type, m.index, m.reject) for m in ready.messages] == [(M.APP_RESP, 1, False)]


def test_the_leader_counts_its_own_entries_only_once_they_are_persisted() -> None:
    node, storage = new_node(1, voters=[1])
    node.campaign()
    drain(node, storage)  # vote persisted -> leader -> empty entry persisted -> committed
    assert node.role is Role.LEADER
    node.propose(b"x")
    assert node.raft.log.committed == 1
    ready = node.ready()
    assert ready.committed_entries == ()
    storage.append(ready.entries)
    node.advance(ready)
    assert node.raft.log.committed == 2
    assert [e.data for e in node.ready().committed_entries] == [b"x"]


def test_a_heartbeat_never_commits_beyond_what_the_follower_is_known_to_hold() -> None:
    """A heartbeat carries min(the follower's match, the leader's commit): a follower whose
    log has not been checked must not commit entries it may not have."""
    net = Network([1, 2, 3])
    net.elect(1)
    net.crash(3)
    for i in range(3):
        net.propose(1, b"x%d" % i)
    net.restart(3)
    leader, storage = net[1], net.storage(1)
    leader.tick()
    heartbeats = {m.to: m.commit for m in of_type(drain(leader, storage), M.HEARTBEAT)}
    assert heartbeats == {2: 4, 3: 1}


@pytest.mark.parametrize(
    "follower_terms",
    [
        [1, 1, 1, 4, 4, 5, 5, 6, 6],  # (a) missing an entry
        [1, 1, 1, 4],  # (b) missing many
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  # (c) an extra uncommitted entry
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  # (d) extra entries of a later term
        [1, 1, 1, 4, 4, 4, 4],  # (e) missing, and extra entries of an old term
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  # (f) a long divergent tail
    ],
    ids=list("abcdef"),
)
def test_the_leader_brings_any_follower_log_in_line_with_its_own(
    follower_terms: list[int],
) -> None:
    """Figure 7 and §5.3: "the leader handles inconsistencies by forcing the followers' logs to
    duplicate its own." The leader's log is the top row of Figure 7, at term 8."""
    leader_terms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
    storages = {
        1: storage_with_log([1, 2, 3], leader_terms, term=8),
        2: storage_with_log([1, 2, 3], follower_terms, term=7),
        3: storage_with_log([1, 2, 3], leader_terms, term=7),
    }
    net = Network([1, 2, 3], storages=storages)
    net.elect(1)
    net.propose(1, b"x")
    assert net.log(2) == net.log(1)
    assert net[2].raft.log.committed == net[1].raft.log.committed == 12


def test_fast_backtracking_skips_a_long_divergent_tail_in_a_few_round_trips() -> None:
    """§5.3: "the follower can include the term of the conflicting entry and the first index
    it stores for that term. With this information, the leader can decrement nextIndex to
    bypass all of the conflicting entries in that term." etcd's hint does it per term, both on
    the follower and on the leader: 300 divergent entries cost a couple of rejections, not
    300."""
    common = [1] * 5
    storages = {
        1: storage_with_log([1, 2, 3], common + [3] * 300, term=3),
        2: storage_with_log([1, 2, 3], common + [2] * 300, term=2),
        3: storage_with_log([1, 2, 3], common + [3] * 300, term=3),
    }
    net = Network([1, 2, 3], storages=storages)
    net.elect(1)
    rejections = [m for m in net.delivered if m.type is M.APP_RESP and m.reject and m.from_ == 2]
    assert 1 <= len(rejections) <= 2
    assert net.log(2) == net.log(1)


def test_the_follower_side_hint_skips_its_own_higher_terms() -> None:
    """etcd's second example: the follower's tail has higher terms than the leader's."""
    storages = {
        1: storage_with_log([1, 2, 3], [1, 3, 3, 3, 3, 3, 3, 3, 7], term=7),
        2: storage_with_log([1, 2, 3], [1, 3, 3, 4, 4, 5, 5, 5, 6], term=6),
        3: storage_with_log([1, 2, 3], [1, 3, 3, 3, 3, 3, 3, 3, 7], term=7),
    }
    net = Network([1, 2, 3], storages=storages)
    net.elect(1)
    rejections = [m for m in net.delivered if m.type is M.APP_RESP and m.reject and m.from_ == 2]
    assert [(m.reject_hint, m.log_term) for m in rejections] == [(9, 6), (3, 3)]
    assert net.log(2) == net.log(1)


# -- Figure 8: commit only entries of the current term -------------------------------------------


@pytest.mark.parametrize(("acked", "expected_commit"), [(1, 0), (2, 0), (3, 3)])
def test_a_leader_commits_only_entries_of_its_own_term_by_counting_replicas(
    acked: int, expected_commit: int
) -> None:
    """§5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only
    log entries from the leader's current term are committed by counting replicas"."""
    node, storage = new_node(1, voters=[1, 2], storage=storage_with_log([1, 2], [1, 2], term=2))
    node.campaign()
    drain(node, storage)
    node.step(message(M.VOTE_RESP, 2, 1, term=3))
    drain(node, storage)
    assert node.role is Role.LEADER and node.raft.log.last_index() == 3
    node.step(message(M.APP_RESP, 2, 1, term=3, index=acked))
    assert node.raft.log.committed == expected_commit


def test_figure_8_an_old_entry_on_a_majority_is_not_committed_and_may_be_overwritten() -> None:
    """Figure 8, replayed: an entry of an earlier term stored on a majority can still be
    replaced by a later leader -- so the leader must not have committed it.

    One entry per message (``max_size_per_msg=1``) lets us stop replication exactly when the
    old entry is on a majority and the new leader's own entry is not.
    """
    net = Network([1, 2, 3, 4, 5], max_size_per_msg=1)
    # (a) S1 leads term 1 and replicates "x" (index 2) to S2 only.
    net.elect(1)
    for other in (3, 4, 5):
        net.cut(1, other)
    net.propose(1, b"x")
    assert [net.log(i)[-1] for i in (1, 2, 3)] == [(2, 1), (2, 1), (1, 1)]
    # (b) S1 crashes; S5 wins term 2 with S3 and S4, appends index 2 at term 2, replicates
    # nothing, and crashes.
    net.crash(1)
    net.heal()
    net.drop_if = lambda m: m.from_ == 5 and m.type is M.APP
    net.campaign(5)
    assert net.leader() == 5 and net.log(5)[-1] == (2, 2)
    net.crash(5)
    net.heal()
    # (c) S1 restarts and wins a later term with S2, S3, S4. It replicates index 2 (term 1)
    # to S3 -- now on S1, S2, S3, a majority -- but its own entry (index 3) only to S2.
    net.restart(1)
    net.drop_if = lambda m: (
        m.from_ == 1
        and m.type is M.APP
        and any(e.index >= 3 for e in m.entries)
        and m.to in (3, 4)
        and len(net.log(m.to)) >= 2  # let the first probe through: it is rejected
    )
    while net.leader() != 1:
        net.campaign(1)
    assert [net.log(i)[1] for i in (1, 2, 3)] == [(2, 1)] * 3
    assert net[1].raft.log.committed == 1, "index 2 is on a majority but of an older term"
    # (d) S1 crashes; S5 restarts and wins with S3 and S4 (its last term, 2, beats theirs):
    # it overwrites index 2 everywhere. Had S1 committed "x", it would now be lost.
    net.crash(1)
    net.heal()
    net.restart(5)
    while net.leader() != 5:
        net.campaign(5)
    net.propose(5, b"y")
    net.restart(1)
    net.tick(5)
    for member in net.ids():
        assert net.log(member) == net.log(5)
        assert net.applied(member) == [b"y"], f"n{member} applied {net.applied(member)}"


# -- crashes -------------------------------------------------------------------------------


def test_a_restarted_follower_catches_up_from_its_persisted_log() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    for i in range(5):
        net.propose(1, b"a%d" % i)
    net.crash(3)
    for i in range(5):
        net.propose(1, b"b%d" % i)
    net.restart(3)
    assert net[3].raft.log.last_index() == 6, "it remembers what it persisted"
    assert net.storage(3).hard_state == HardState(term=1, vote=1, commit=6)
    net.tick(1)
    assert net.applied(3) == net.applied(1)
    assert len(net.applied(3)) == 10


def test_committed_entries_survive_the_leader() -> None:
    """Leader Completeness (§5.4): "if a log entry is committed in a given term, then that
    entry will be present in the logs of the leaders for all higher-numbered terms"."""
    net = Network([1, 2, 3], seed=4)
    net.elect(1)
    for i in range(5):
        net.propose(1, b"c%d" % i)
    committed = net.log(1)
    net.crash(1)
    for _ in range(50):
        net.tick_all()
        if net.leader() not in (None, 1):
            break
    new_leader = net.leader()
    assert new_leader in (2, 3)
    assert net.log(new_leader)[: len(committed)] == committed
    net.propose(new_leader, b"after")
    net.restart(1)
    net.tick(new_leader)
    assert (
        net.applied(1) == net.applied(new_leader) == [b"c0", b"c1", b"c2", b"c3", b"c4", b"after"]
    )


# -- a seeded simulation ----------------------------------------------------------------------


def check_safety(net: Network, leaders_by_term: dict[int, int]) -> None:
    """Figure 3's properties, checked on the current state of every member."""
    # Election Safety: at most one leader per term (from the event stream).
    for event in net.events:
        if type(event).__name__ == "BecameLeader":
            assert leaders_by_term.setdefault(event.term, event.node) == event.node, (
                f"two leaders in term {event.term}"
            )
    # State Machine Safety: applied sequences are prefixes of one another.
    applied = sorted((net.applied(i) for i in net.ids()), key=len)
    for shorter, longer in itertools.pairwise(applied):
        assert longer[: len(shorter)] == shorter
    # Log Matching: same (index, term) -> same prefix.
    logs = {i: dict(net.log(i)) for i in net.ids()}
    for a in net.ids():
        for b in net.ids():
            common = [i for i in logs[a] if logs[b].get(i) == logs[a][i]]
            if common:
                top = max(common)
                assert all(logs[a].get(i) == logs[b].get(i) for i in range(1, top + 1)), (
                    f"n{a} and n{b} agree on entry {top} but not before it"
                )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("extensions", [False, True], ids=["plain", "prevote+checkquorum"])
def test_a_seeded_simulation_keeps_raft_safe(seed: int, extensions: bool) -> None:
    """Random ticks, proposals, partitions, lost messages and crashes; Figure 3 holds
    throughout, and once the faults stop everyone agrees. Replay a failure with its seed."""
    rng = random.Random(seed)
    net = Network([1, 2, 3, 4, 5], seed=seed, pre_vote=extensions, check_quorum=extensions)
    leaders_by_term: dict[int, int] = {}
    proposed = 0
    down: set[int] = set()
    for _ in range(300):
        action = rng.random()
        if action < 0.5:
            net.tick_all()
        elif action < 0.75:
            up = [i for i in net.ids() if i not in down]
            try:
                net.propose(rng.choice(up), b"cmd%d" % proposed)
                proposed += 1
            except ProposalDroppedError:
                pass
        elif action < 0.85:
            net.heal()
            a, b = rng.sample(net.ids(), 2)
            net.cut(a, b)
            loss = rng.random() * 0.3
            net.drop_if = lambda m, loss=loss: rng.random() < loss
        elif action < 0.93 and len(down) < 2:
            victim = rng.choice([i for i in net.ids() if i not in down])
            net.crash(victim)
            down.add(victim)
        elif down:
            revived = down.pop()
            net.restart(revived)
        check_safety(net, leaders_by_term)
    for member in list(down):
        net.restart(member)
    net.heal()
    net.tick_all(60)
    leader = net.leader()
    assert leader is not None
    net.propose(leader, b"final")
    net.tick_all(5)
    check_safety(net, leaders_by_term)
    assert all(net.applied(i) == net.applied(leader) for i in net.ids())
    assert net.applied(leader)[-1] == b"final"
