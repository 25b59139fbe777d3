"""Saving and loading a session (``kv tui --load run.json``), diff and link faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kv.raft import ReadOnlyOption
from kv.sim import Cluster, NetworkConfig, SimConfig
from tui.session import Session, actions, trace


def test_a_saved_session_loads_with_the_same_timelines_and_events(tmp_path: Path) -> None:
    session = Session.new(nodes=3, seed=7, pre_vote=False)
    session.run_for(2_000)
    session.act(actions.ClientPut("k", "v"))
    session.run_for(1_000)
    session.seek(session.position // 2)
    session.act(actions.Partition.of([1], [2, 3]))
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


EVERY_ACTION = [
    actions.ClientPut("k", "v"),
    actions.ClientLeaseGrant(1, 2),
    actions.ClientLeasePut("lock", "held", 1),
    actions.KeepAlive(1, (2, 3)),
    actions.StopKeepAlive(1),
    actions.Crash(2),
    actions.Restart(2),
    actions.RestartLeader(300),
    actions.Amnesia(3),
    actions.Partition.of([3, 1], [2]),
    actions.Cut.of([1], [3, 2]),
    actions.Heal(),
    actions.LinkFaults(1, 2, 0.5, 20),
    actions.TransferLeader(3),
    actions.Timeout(1),
    actions.AddLearner(),
    actions.PromoteLearner(4),
    actions.RemoveMember(2),
    actions.RemoveLeader(keep_voters=3),
    actions.SpreadTimers(),
    actions.AlignTimers(),
    actions.Deliver(7),
    actions.Drop(7),
    actions.Duplicate(7),
    actions.Delay(7, 300),
    actions.Note("step 1 of 3"),
]


def test_every_action_round_trips_through_json_text() -> None:
    assert {type(a).__name__ for a in EVERY_ACTION} == set(actions.ACTIONS)
    for action in EVERY_ACTION:
        text = json.dumps(actions.to_json(action))
        assert actions.from_json(json.loads(text)) == action, text


def test_a_trace_names_an_action_by_its_class_and_writes_sets_as_sorted_lists() -> None:
    assert actions.to_json(actions.Crash(2)) == {"type": "Crash", "node": 2}
    assert actions.to_json(actions.Partition.of([3, 1], [2])) == {
        "type": "Partition",
        "groups": [[1, 3], [2]],
    }
    assert actions.to_json(actions.Cut.of([1], [3, 2])) == {"type": "Cut", "frm": [1], "to": [2, 3]}


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Explode", "node": 2},
        {"type": "Crash"},
        {"type": "Crash", "node": 2, "disk": "wiped"},
        {"type": "Crash", "node": "2"},
        {"type": "Crash", "node": True},
        {"type": "Partition", "groups": [1, 2]},
        {"type": "Cut", "frm": 1, "to": [2]},
    ],
)
def test_an_action_that_is_not_one_is_refused_on_loading(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        actions.from_json(data)


def test_a_configuration_round_trips_through_json_text() -> None:
    config = SimConfig(
        pre_vote=False,
        read_only_option=ReadOnlyOption.LEASE_BASED,
        disk_ms=(2, 4),
        network=NetworkConfig(delay_ms=(1, 150), drop_rate=0.1),
    )
    written = trace.config_to_json(config)
    assert written["read_only_option"] == "lease-based"
    assert trace.config_from_json(json.loads(json.dumps(written))) == config


def test_an_unknown_configuration_field_is_refused() -> None:
    with pytest.raises(ValueError, match="no field"):
        trace.config_from_json({"pre_vote": False, "fast": True})
