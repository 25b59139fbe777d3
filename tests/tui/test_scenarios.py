"""Every scenario of the TUI, played to its end: each checks the behaviour it teaches.

(Figure 8 has its own file: tests/tui/test_scenarios_figure8.py.)
"""

from __future__ import annotations

import copy

import pytest

from kv.raft import Role
from kv.raft import events as ev
from kv.sim import Cluster, NetworkChanged, NodeRestarted
from tests.tui.playing import Played, play
from tui.session.scenarios import (
    LEADER_CRASH,
    LEADER_REMOVED,
    LEARNER,
    LEASE_ACROSS_A_LEADER_CHANGE,
    PARTITIONED_LEADER,
    PARTITIONED_LEADER_BARE,
    SCENARIOS,
    SNAPSHOT_CATCH_UP,
    SPLIT_VOTE,
    Scenario,
)
from tui.session.session import Session


def first_leader_and_last(played: Played) -> tuple[ev.Event, ev.Event]:
    leaders = played.events(ev.BecameLeader)
    return leaders[0], leaders[-1]


def network_change(cluster: Cluster, healed: bool) -> int:
    """Where in the event log the network was first partitioned, or first healed."""
    return next(
        i
        for i, t in enumerate(cluster.events)
        if isinstance(t.event, NetworkChanged) and (t.event.description == "healed") == healed
    )


def test_leader_crash_elects_a_new_leader_while_the_old_one_is_down_and_it_follows() -> None:
    played = play(LEADER_CRASH)
    old, new = first_leader_and_last(played)
    assert new.node != old.node and new.term > old.term, played
    events = played.session.cluster.events
    elected = next(i for i, t in enumerate(events) if t.event == new)
    back = next(
        i
        for i, t in enumerate(events)
        if isinstance(t.event, NodeRestarted) and t.event.node == old.node
    )
    assert elected < back, f"{played}: n{old.node} was back before the new election"
    follower = played.session.cluster.nodes[old.node]
    leader = played.session.cluster.nodes[new.node]
    assert (follower.role, follower.term, follower.lead) == (Role.FOLLOWER, new.term, new.node)
    assert follower.applied >= leader.commit > 0, played


def test_split_vote_has_a_term_of_candidates_that_started_together_and_nobody_won() -> None:
    played = play(SPLIT_VOTE)
    started: dict[int, dict[int, int]] = {}
    for timed in played.session.cluster.events:
        if isinstance(timed.event, ev.BecameCandidate):
            started.setdefault(timed.event.term, {})[timed.event.node] = timed.time
    led = {event.term for event in played.events(ev.BecameLeader)}
    split = [t for t, nodes in started.items() if len(nodes) >= 2 and t not in led]
    assert split and max(led) > max(split), played
    assert len(set(started[split[0]].values())) == 1, f"{played}: timers not aligned"


def test_partitioned_leader_with_check_quorum_steps_down_alone_and_its_term_never_rises() -> None:
    played = play(PARTITIONED_LEADER)
    old, new = first_leader_and_last(played)
    assert new.node != old.node and new.term > old.term, played
    cluster = played.session.cluster
    cut, healed = network_change(cluster, False), network_change(cluster, True)
    isolated = [
        t.event
        for t in cluster.events[cut:healed]
        if isinstance(t.event, ev.Event) and t.event.node == old.node
    ]
    # PreVote: its pre-campaigns while cut off ask at its own term, which never rises.
    assert isolated and all(e.term == old.term for e in isolated), played
    assert ev.QuorumLost(old.node, old.term) in isolated, f"{played}: it did not step down"
    # The heal disturbs nobody: no election after it, and the new leader still leads.
    after = [t.event for t in cluster.events[healed:]]
    assert not any(isinstance(e, ev.BecameCandidate | ev.BecamePreCandidate) for e in after)
    assert cluster.leader() == new.node and cluster.nodes[new.node].term == new.term
    follower = cluster.nodes[old.node]
    assert (follower.role, follower.term, follower.lead) == (Role.FOLLOWER, new.term, new.node)


def test_partitioned_leader_without_check_quorum_leads_its_old_term_beside_the_new_leader() -> None:
    played = play(PARTITIONED_LEADER_BARE)
    old, new = first_leader_and_last(played)
    still = played.at[played.step_of("without CheckQuorum")]
    stale, fresh = still.nodes[old.node], still.nodes[new.node]
    # Two leaders at once, in different terms: the old one does not know it was replaced.
    assert (stale.role, stale.term) == (Role.LEADER, old.term), played
    assert (fresh.role, fresh.term) == (Role.LEADER, new.term) and new.term > old.term
    assert not played.events(ev.QuorumLost)
    cluster = played.session.cluster
    follower = cluster.nodes[old.node]
    assert (follower.role, follower.term, follower.lead) == (Role.FOLLOWER, new.term, new.node)
    assert cluster.leader() == new.node


def test_lagging_follower_is_caught_up_by_a_snapshot_not_by_the_compacted_entries() -> None:
    played = play(SNAPSHOT_CATCH_UP)
    cluster = played.session.cluster
    restored = played.events(ev.SnapshotRestored)
    assert played.events(ev.SnapshotSent) and restored, played
    lagging = cluster.nodes[restored[0].node]
    assert lagging.storage.snapshot().metadata.index > 0
    assert lagging.get("k11") == "v11"
    leader = cluster.leader()
    assert leader is not None and lagging.applied >= cluster.nodes[leader].commit


def test_a_learner_is_added_without_a_vote_caught_up_and_promoted() -> None:
    played = play(LEARNER)
    joined = played.at[played.step_of("n4 joined as a learner")]
    leader = joined.leader()
    assert leader is not None
    status = joined.nodes[leader].status()
    assert status is not None and 4 in status.conf_state.learners
    assert 4 not in status.conf_state.voters, played
    cluster = played.session.cluster
    leader = cluster.leader()
    assert leader is not None
    status = cluster.nodes[leader].status()
    assert status is not None and 4 in status.conf_state.voters, played
    assert not cluster.membership.learners and cluster.nodes[4].get("k") == "v"


def test_a_removed_leader_shuts_down_and_the_rest_elect_a_leader_of_a_later_term() -> None:
    played = play(LEADER_REMOVED)
    old, new = first_leader_and_last(played)
    cluster = played.session.cluster
    assert old.node not in cluster.ids and not cluster.nodes[old.node].up
    assert cluster.leader() == new.node and new.term > old.term, played
    status = cluster.nodes[new.node].status()
    assert status is not None and old.node not in status.conf_state.voters


def test_a_scenario_is_recorded_and_replays_from_a_rewind() -> None:
    played = play(LEADER_CRASH)
    session = played.session
    lines = [str(line) for line in session.narration()]
    end = session.position
    session.seek(0)
    session.seek(end)
    assert [str(line) for line in session.narration()] == lines
    assert any("you: step 2 of 3" in line for line in lines)


# The lease scenario's copy is taken while its lease is kept alive and a revoke waits: keepers,
# revokes under way and the lessors' clock must be copied with the cluster (the keyframes).
@pytest.mark.parametrize(
    ("scenario", "steps"), [(PARTITIONED_LEADER, 2), (LEASE_ACROSS_A_LEADER_CHANGE, 5)]
)
def test_a_copy_of_a_session_in_the_middle_of_a_scenario_plays_on_identically(
    scenario: Scenario, steps: int
) -> None:
    session = Session.for_scenario(scenario)
    while session.scenario is not None and session.scenario.next_step < steps:
        session.step()
        session.resume()
    twin = copy.deepcopy(session)
    for each in (session, twin):
        while each.scenario is not None and each.now < 30_000:
            each.step()
            each.resume()
    assert session.scenario is None and twin.scenario is None
    assert [str(line) for line in twin.narration()] == [str(line) for line in session.narration()]


def test_every_scenario_has_a_distinct_key() -> None:
    assert sorted(SCENARIOS) == [str(key) for key in range(10)]
    assert all(key == scenario.key for key, scenario in SCENARIOS.items())
