"""Session time travel: rewinding from keyframes, replaying the recorded future, forking."""

from __future__ import annotations

from kv.sim import Cluster
from tui.session import Session, actions


def texts(session: Session) -> list[str]:
    return [str(line) for line in session.narration()]


def test_back_then_forward_replays_the_same_events() -> None:
    session = Session.new(nodes=3, seed=7, keyframe_every=50)
    session.run_for(2_000)
    session.act(actions.Crash(1))
    session.run_for(3_000)
    end, seen, now = session.position, texts(session), session.now
    session.seek(10)
    assert session.position == 10 and session.length == end
    session.seek(end)
    assert texts(session) == seen and session.position == end
    assert session.now <= now


def test_stepping_behind_the_end_replays_the_recorded_action() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(2_000)
    session.act(actions.Crash(2))
    at = session.position
    session.back()
    assert session.cluster.nodes[2].up
    assert session.step()
    assert not session.cluster.nodes[2].up and session.position == at
    assert len(session.timelines) == 1


def test_acting_in_the_past_forks_a_new_timeline_and_keeps_the_old_one() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(3_000)
    old_length, old_lines = session.length, texts(session)
    session.seek(old_length // 2)
    session.act(actions.Crash(3))
    assert len(session.timelines) == 2 and session.current == 1
    assert session.length == old_length // 2 + 1
    assert session.timelines[1].parent == 0
    session.switch(0)
    assert session.position == old_length and texts(session) == old_lines
    assert session.cluster.nodes[3].up


def test_acting_at_the_end_does_not_fork() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(2_000)
    session.act(actions.ClientPut("a", "1"))
    assert len(session.timelines) == 1


def test_a_copy_of_a_cluster_runs_on_identically_and_independently() -> None:
    cluster = Cluster.create(3, seed=7)
    cluster.elect_leader()
    cluster.client().put("k", "v")  # client tasks on the timeline
    cluster.membership.add_learner()  # operator tasks on the timeline
    cluster.run_for(3)
    copy = cluster.copy()
    events_before = len(cluster.events)
    copy.run_for(3_000)
    assert len(cluster.events) == events_before, "running the copy changed the original"
    cluster.run_for(3_000)
    assert cluster.event_lines() == copy.event_lines()
    assert [n.store.history for n in cluster.nodes.values() if n.store] == [
        n.store.history for n in copy.nodes.values() if n.store
    ]


def test_a_copy_of_a_cluster_shares_the_immutable_values_it_stores() -> None:
    # Why keyframes are cheap enough to keep 4,000 entries apart: a copy shares the frozen
    # values (store history, log entries, client ops' requests) instead of copying each.
    cluster = Cluster.create(3, seed=7)
    cluster.elect_leader()
    cluster.client().put("k", "v")
    cluster.run_for(1_000)
    copy = cluster.copy()
    for node_id, node in cluster.nodes.items():
        original, copied = node.store, copy.nodes[node_id].store
        assert original is not None and copied is not None
        assert original.history is not copied.history and original.history
        pairs = zip(original.history.values(), copied.history.values(), strict=True)
        assert all(a is b for a, b in pairs), f"node {node_id} [seed 7]"
