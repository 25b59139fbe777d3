"""Every scenario of the TUI, played to its end: each checks the outcome it narrates."""

from __future__ import annotations

from kv.raft import Role
from kv.raft import events as ev
from tui.session import Session
from tui.session.scenarios import (
    LEADER_CRASH,
    LEADER_REMOVED,
    LEARNER,
    PARTITIONED_LEADER,
    PARTITIONED_LEADER_BARE,
    SCENARIOS,
    SNAPSHOT_CATCH_UP,
    SPLIT_VOTE,
    Scenario,
)


def play(scenario: Scenario, limit_ms: int = 60_000) -> tuple[Session, list[str]]:
    """Play ``scenario`` to its end, resuming at every pause; the cues shown, in order."""
    session = Session.for_scenario(scenario)
    cues: list[str] = []
    while session.now < limit_ms and (session.scenario is not None or session.cue):
        session.run_for(100)
        if session.cue is not None:
            cues.append(str(session.cue))
            session.resume()
        assert session.frozen is None, session.frozen
    assert len(cues) == len(scenario.steps), f"{scenario.title} [seed {scenario.seed}]: {cues}"
    return session, cues


def events_of(session: Session, kind: type[ev.Event]) -> list[ev.Event]:
    return [t.event for t in session.cluster.events if isinstance(t.event, kind)]


def test_leader_crash_elects_a_leader_of_a_later_term_and_the_old_one_follows() -> None:
    session, cues = play(LEADER_CRASH)
    leaders = events_of(session, ev.BecameLeader)
    assert len(leaders) >= 2 and leaders[-1].term > leaders[0].term
    old = leaders[0].node
    assert session.cluster.nodes[old].role is Role.FOLLOWER
    assert cues[0].startswith("step 1 of 3: n")


def test_split_vote_has_a_term_without_a_leader_then_a_leader() -> None:
    session, _ = play(SPLIT_VOTE)
    candidates: dict[int, set[int]] = {}
    for event in events_of(session, ev.BecameCandidate):
        candidates.setdefault(event.term, set()).add(event.node)
    led = {event.term for event in events_of(session, ev.BecameLeader)}
    split = [t for t, nodes in candidates.items() if len(nodes) >= 2 and t not in led]
    assert split and max(led) > max(split)


def test_partitioned_leader_with_check_quorum_steps_down() -> None:
    session, _ = play(PARTITIONED_LEADER)
    assert events_of(session, ev.QuorumLost)


def test_partitioned_leader_without_check_quorum_keeps_leading_until_healed() -> None:
    session, _ = play(PARTITIONED_LEADER_BARE)
    assert not events_of(session, ev.QuorumLost)
    old = events_of(session, ev.BecameLeader)[0]
    # it led all along, in its stale term, until the heal told it of the new one
    assert session.cluster.nodes[old.node].role is Role.FOLLOWER


def test_lagging_follower_is_caught_up_by_a_snapshot() -> None:
    session, _ = play(SNAPSHOT_CATCH_UP)
    assert events_of(session, ev.SnapshotSent) and events_of(session, ev.SnapshotRestored)
    lagging = events_of(session, ev.SnapshotRestored)[0].node
    assert session.cluster.nodes[lagging].get("k11") == "v11"


def test_a_learner_is_added_caught_up_and_promoted() -> None:
    session, _ = play(LEARNER)
    assert 4 in session.cluster.ids and not session.cluster.membership.learners
    assert session.cluster.nodes[4].get("k") == "v"


def test_a_removed_leader_shuts_down_and_the_rest_elect_a_leader() -> None:
    session, _ = play(LEADER_REMOVED)
    old = events_of(session, ev.BecameLeader)[0].node
    assert old not in session.cluster.ids and not session.cluster.nodes[old].up
    assert session.cluster.leader() not in (None, old)


def test_a_scenario_is_recorded_and_replays_from_a_rewind() -> None:
    session, _ = play(LEADER_CRASH)
    lines = [str(line) for line in session.narration()]
    end = session.position
    session.seek(0)
    session.seek(end)
    assert [str(line) for line in session.narration()] == lines
    assert any("you: step 2 of 3" in line for line in lines)


def test_every_scenario_has_a_distinct_key() -> None:
    assert len(SCENARIOS) == 7
