"""Membership changes on the simulated cluster, one behaviour per test.

Members are added as learners with an empty log, promoted once caught up, and removed -- the
leader too -- each change a `ConfChange` entry proposed to the leader and in effect on a
member once that member applies it (`kv.sim.membership`, thesis §4.1). Failure messages carry
the seed and what to replay.
"""

from __future__ import annotations

import pytest

from kv.raft import ConfState, Role
from kv.raft import events as ev
from kv.sim import (
    Cluster,
    MemberOp,
    MemberOpState,
    NodeJoined,
    NodeLeft,
    OpState,
    RestartAll,
    SimConfig,
)

ELECTION_MS = 1_000
SNAPSHOTS = SimConfig(snapshot_every=4, snapshot_keep=2)


def finish(cluster: Cluster, op: MemberOp, limit_ms: int = 10_000) -> MemberOp:
    assert cluster.run_until(lambda c: op.done, limit_ms), f"{op} [{cluster.describe()}]"
    assert op.state is MemberOpState.DONE, f"{op} [{cluster.describe()}]"
    return op


def put_many(cluster: Cluster, count: int, endpoint: int | None = None) -> None:
    client = cluster.client(endpoint)
    for i in range(count):
        op = cluster.complete(client.put(f"k{i % 3}", f"v{i}"))
        assert op.state is OpState.OK, f"{op} [{cluster.describe()}]"


def events_of(cluster: Cluster, kind: type, node: int) -> list[object]:
    return [
        e.event
        for e in cluster.events
        if isinstance(e.event, kind) and getattr(e.event, "node", None) == node
    ]


def conf(cluster: Cluster, node: int) -> ConfState:
    status = cluster.nodes[node].status()
    assert status is not None, f"n{node} is down"
    return status.conf_state


@pytest.mark.parametrize("seed", range(5))
def test_a_new_member_joins_as_a_learner_and_learns_the_whole_log(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    cluster.elect_leader()
    put_many(cluster, 6)
    op = finish(cluster, cluster.membership.add_learner())
    assert op.node == 4
    assert op.conf_state == ConfState(voters=(1, 2, 3), learners=(4,))
    assert events_of(cluster, NodeJoined, 4), "n4 started only once its add was applied"
    assert cluster.run_until(Cluster.converged, 2 * ELECTION_MS), cluster.describe()
    n4 = cluster.nodes[4]
    assert n4.log[0].index == 1, "no compaction: it got every entry from the first on"
    assert conf(cluster, 4) == ConfState(voters=(1, 2, 3), learners=(4,))
    assert [n4.get(f"k{i}") for i in range(3)] == ["v3", "v4", "v5"]


@pytest.mark.parametrize("seed", range(5))
def test_a_learner_does_not_count_for_commitment(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    finish(cluster, cluster.membership.add_learner())
    assert cluster.run_until(Cluster.converged, 2 * ELECTION_MS), cluster.describe()
    for follower in (i for i in (1, 2, 3) if i != leader):
        cluster.crash(follower)
    commit = cluster.nodes[leader].commit
    op = cluster.complete(cluster.client(leader).put("k", "v"))
    # The leader and the learner both hold the entry; two of four members, one of three voters.
    assert op.state is OpState.TIMED_OUT, f"{op} [{cluster.describe()}]"
    assert cluster.nodes[4].last_index == cluster.nodes[leader].last_index > commit
    assert cluster.nodes[leader].commit == commit, "a learner's copy committed nothing"


@pytest.mark.parametrize("seed", range(5))
def test_a_learner_never_campaigns_and_is_never_asked_to_vote(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    finish(cluster, cluster.membership.add_learner())
    cluster.crash(leader)
    assert cluster.elect_leader() in (1, 2, 3)
    cluster.run_for(10 * ELECTION_MS)
    for kind in (ev.BecamePreCandidate, ev.BecameCandidate, ev.VoteGranted, ev.VoteRejected):
        assert not events_of(cluster, kind, 4), f"n4: {kind.__name__} [{cluster.describe()}]"
    assert cluster.nodes[4].role is Role.FOLLOWER


@pytest.mark.parametrize("seed", range(8))
def test_a_new_member_catches_up_by_snapshot_when_the_log_it_needs_was_compacted(
    seed: int,
) -> None:
    cluster = Cluster.create(3, seed=seed, config=SNAPSHOTS)
    leader = cluster.elect_leader()
    put_many(cluster, 20, leader)
    assert cluster.nodes[leader].storage.first_index() > 1, "the leader compacted its log"
    finish(cluster, cluster.membership.add_learner())
    assert cluster.run_until(Cluster.converged, 3 * ELECTION_MS), cluster.describe()
    sent = [e.event for e in cluster.events if isinstance(e.event, ev.SnapshotSent)]
    assert any(event.to == 4 for event in sent), cluster.describe()
    restored = events_of(cluster, ev.SnapshotRestored, 4)
    assert restored, cluster.describe()
    assert [cluster.nodes[4].get(f"k{i}") for i in range(3)] == ["v18", "v19", "v17"]


@pytest.mark.parametrize("seed", range(5))
def test_a_learner_is_promoted_only_once_it_has_caught_up(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    put_many(cluster, 10, leader)
    cluster.cut([leader], [4])  # n4 will get nothing from the leader for now
    finish(cluster, cluster.membership.add_learner())
    promote = cluster.membership.promote(4)
    cluster.run_for(3 * ELECTION_MS)
    assert not promote.done, f"promoted a learner that has nothing [{cluster.describe()}]"
    assert conf(cluster, leader).learners == (4,)
    cluster.heal()
    finish(cluster, promote)
    assert promote.conf_state == ConfState(voters=(1, 2, 3, 4))
    status = cluster.nodes[leader].status()
    assert status is not None and status.progress[4].match >= 0.9 * status.progress[leader].match


@pytest.mark.parametrize("seed", range(5))
def test_a_promoted_member_votes_and_may_lead(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    cluster.elect_leader()
    finish(cluster, cluster.membership.add_learner())
    finish(cluster, cluster.membership.promote(4))
    assert cluster.run_until(Cluster.converged, 2 * ELECTION_MS), cluster.describe()
    assert conf(cluster, 4) == ConfState(voters=(1, 2, 3, 4))
    cluster.transfer_leader(4)
    assert cluster.run_until(lambda c: c.leader() == 4, 2 * ELECTION_MS), cluster.describe()
    put_many(cluster, 3, 4)


@pytest.mark.parametrize("seed", range(5))
def test_a_removed_follower_shuts_down_and_the_others_go_on(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    follower = next(i for i in cluster.ids if i != leader)
    finish(cluster, cluster.membership.remove(follower))
    assert follower not in cluster.ids
    assert cluster.run_until(lambda c: not c.nodes[follower].up and c.converged(), ELECTION_MS)
    assert events_of(cluster, NodeLeft, follower), cluster.describe()
    rest = [i for i in (1, 2, 3) if i != follower]
    assert all(conf(cluster, i) == ConfState(voters=tuple(rest)) for i in rest)
    put_many(cluster, 3)  # two voters of two: both must store each entry


@pytest.mark.parametrize("seed", range(8))
def test_a_removed_leader_steps_down_and_the_others_elect_a_new_one(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    cluster.elect_leader()
    finish(cluster, cluster.membership.add_learner())
    finish(cluster, cluster.membership.promote(4))
    old = cluster.elect_leader()
    removal = finish(cluster, cluster.membership.remove_leader())
    assert removal.node == old
    stepped_down = [e for e in events_of(cluster, ev.BecameFollower, old)]
    assert stepped_down and events_of(cluster, NodeLeft, old), cluster.describe()
    new = cluster.elect_leader()
    assert new != old and new in cluster.ids, cluster.describe()
    assert conf(cluster, new) == ConfState(voters=tuple(i for i in (1, 2, 3, 4) if i != old))
    # A follower that still believes the old leader leads would forward a put to it.
    assert cluster.run_until(lambda c: all(c.nodes[i].lead == new for i in c.ids), ELECTION_MS)
    put_many(cluster, 3)
    assert cluster.run_until(Cluster.converged, 2 * ELECTION_MS), cluster.describe()


def test_a_removed_member_is_never_restarted() -> None:
    cluster = Cluster.create(3, seed=1)
    leader = cluster.elect_leader()
    follower = next(i for i in cluster.ids if i != leader)
    finish(cluster, cluster.membership.remove(follower))
    RestartAll().apply(cluster)
    assert not cluster.nodes[follower].up
    with pytest.raises(ValueError, match="removed"):
        cluster.restart(follower)


def remove_a_cut_off_follower(config: SimConfig, seed: int) -> tuple[Cluster, int, int]:
    """Remove a follower while it is cut off, so that it never learns of its removal; then
    heal. Returns the cluster, the leader and the removed member."""
    cluster = Cluster.create(3, seed=seed, config=config)
    leader = cluster.elect_leader()
    cluster.run_for(ELECTION_MS)
    removed = next(i for i in cluster.ids if i != leader)
    cluster.isolate(removed)
    finish(cluster, cluster.membership.remove(removed))
    cluster.run_for(3 * ELECTION_MS)  # long enough for it to time out and campaign
    cluster.heal()
    return cluster, leader, removed


@pytest.mark.parametrize("seed", range(5))
def test_a_removed_member_that_missed_its_removal_does_not_disrupt_the_cluster(
    seed: int,
) -> None:
    """Thesis §4.2.3: the removed member times out and campaigns, but PreVote keeps its term
    where it was and CheckQuorum's lease makes the others ignore it."""
    cluster, leader, removed = remove_a_cut_off_follower(SimConfig(), seed)
    term = cluster.nodes[leader].term
    start = len(cluster.events)
    cluster.run_for(10 * ELECTION_MS)
    assert cluster.nodes[removed].up, "it never learned of its removal"
    assert cluster.leader() == leader and cluster.nodes[leader].term == term, cluster.describe()
    asked = [e.event for e in cluster.events[start:] if isinstance(e.event, ev.VoteIgnored)]
    assert asked and all(event.candidate == removed for event in asked), cluster.describe()
    put_many(cluster, 3, leader)


@pytest.mark.parametrize("seed", range(5))
def test_without_prevote_and_checkquorum_a_removed_member_deposes_the_leader(seed: int) -> None:
    """The contrast: in plain Raft its vote requests carry ever higher terms, and the members
    that receive one step down to follow that term."""
    plain = SimConfig(pre_vote=False, check_quorum=False)
    cluster, leader, removed = remove_a_cut_off_follower(plain, seed)
    term = cluster.nodes[leader].term
    cluster.run_for(5 * ELECTION_MS)
    assert cluster.nodes[leader].term > term, cluster.describe()
    assert events_of(cluster, ev.BecameCandidate, removed), cluster.describe()
    deposed = [e for e in events_of(cluster, ev.BecameFollower, leader) if e.term > term]
    assert deposed, cluster.describe()


@pytest.mark.parametrize("seed", range(5))
def test_the_operator_asks_again_when_the_leader_crashes_before_applying_a_change(
    seed: int,
) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    op = cluster.membership.add_learner()
    assert cluster.run_until(lambda c: op.attempts == 1, ELECTION_MS), cluster.describe()
    cluster.crash(leader)
    finish(cluster, op)
    first, second = op.requests.values()
    assert first == leader and op.reason == f"applied by n{second}", f"{op} {op.requests}"
    cluster.restart(leader)
    assert cluster.run_until(Cluster.converged, 3 * ELECTION_MS), cluster.describe()
    assert all(conf(cluster, i) == ConfState(voters=(1, 2, 3), learners=(4,)) for i in cluster.ids)
