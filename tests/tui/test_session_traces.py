"""Saving and loading a session (``kv tui --load run.json``), diff and link faults."""

from __future__ import annotations

from pathlib import Path

from kv.sim import Cluster, SimConfig
from tui.session import Session, actions


def test_a_saved_session_loads_with_the_same_timelines_and_events(tmp_path: Path) -> None:
    session = Session.new(nodes=3, seed=7, pre_vote=False)
    session.run_for(2_000)
    session.act(actions.ClientPut("k", "v"))
    session.run_for(1_000)
    session.seek(session.position // 2)
    session.act(actions.Partition(((1,), (2, 3))))
    session.run_for(500)
    path = tmp_path / "run.json"
    session.save(path)
    loaded = Session.load(path)
    assert loaded.config == session.config
    assert (loaded.current, loaded.position, loaded.length) == (
        1,
        session.position,
        0 + session.length,
    )
    assert [str(line) for line in loaded.narration()] == [str(line) for line in session.narration()]
    assert [t.recorded() for t in loaded.timelines] == [t.recorded() for t in session.timelines]
    loaded.switch(0)
    assert loaded.cluster.nodes[1].get("k") == "v"


def test_loading_replays_only_the_current_timeline_and_the_others_when_switched_to(
    tmp_path: Path,
) -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(3_000)
    session.seek(session.position // 2)
    session.act(actions.Crash(1))
    session.run_for(500)
    session.save(tmp_path / "run.json")
    session.switch(0)
    first = [str(line) for line in session.narration()]
    loaded = Session.load(tmp_path / "run.json")
    other = loaded.timelines[0]
    assert (other.replayed, list(other.keyframes), other.marks) == (False, [0], [])
    assert other.length == session.timelines[0].length  # what the timeline list shows
    loaded.switch(0)
    assert other.replayed and [str(line) for line in loaded.narration()] == first
    assert other.marks == session.timelines[0].marks
    assert loaded.position == loaded.length == session.timelines[0].length


def test_a_failing_seed_loads_from_a_seed_alone_or_from_describe(tmp_path: Path) -> None:
    cluster = Cluster.create(5, seed=42, config=SimConfig(pre_vote=False, tick_ms=50))
    described = tmp_path / "failure.txt"
    described.write_text(cluster.describe() + "\n")
    session = Session.load(described)
    assert (session.seed, session.nodes) == (42, 5)
    assert session.config == SimConfig(pre_vote=False, tick_ms=50)
    bare = tmp_path / "seed.json"
    bare.write_text('{"seed": 42, "nodes": 5}')
    assert Session.load(bare).config == SimConfig()


def test_diff_shows_what_the_last_event_changed() -> None:
    session = Session.new(nodes=3, seed=7)
    while session.cluster.leader() is None:
        assert session.step()
    leader = session.cluster.leader()
    changed = {(c.node, c.field): c.after for c in session.diff()}
    assert changed[(leader, "role")] == "leader"
    assert all(node == leader for node, _ in changed)


def test_a_lossy_link_loses_what_it_carries_until_healed() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(2_000)
    leader = session.cluster.leader() or 0
    follower = next(i for i in (1, 2, 3) if i != leader)
    session.act(actions.LinkFaults(leader, follower, 1.0, 0))
    dropped = sum(session.cluster.network.dropped.values())
    session.run_for(500)
    assert sum(session.cluster.network.dropped.values()) >= dropped + 4
    session.act(actions.Heal())
    assert session.cluster.network.link_faults == {}


def test_actions_round_trip_through_json() -> None:
    every = [
        actions.ClientPut("k", "v"),
        actions.Partition(((1,), (2, 3))),
        actions.Cut((1,), (2, 3)),
        actions.LinkFaults(1, 2, 0.5, 20),
        actions.Delay(7, 300),
        actions.RestartLeader(),
        actions.Note("step 1 of 3"),
    ]
    assert [actions.from_json(actions.to_json(a)) for a in every] == every
