"""tui.session.Session: running, acting and narrating (issue 9's model layer)."""

from __future__ import annotations

from kv.raft import Role
from tui.session import MarkKind, Session, Source, actions


def leader_of(session: Session) -> int:
    leader = session.cluster.leader()
    assert leader is not None, f"no leader [seed {session.seed}]"
    return leader


def test_a_new_session_elects_a_leader_within_a_few_seconds_of_virtual_time() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(3_000)
    assert session.cluster.leader() is not None, "seed 7"
    assert session.now == 3_000
    assert session.position == session.length > 0


def test_step_takes_exactly_one_event() -> None:
    session = Session.new(nodes=3, seed=7)
    before = session.cluster.next_time()
    assert session.step()
    assert session.position == 1
    assert session.now == before


def test_a_session_is_a_pure_function_of_seed_and_actions() -> None:
    def run() -> list[str]:
        session = Session.new(nodes=5, seed=11)
        session.run_for(2_000)
        session.act(actions.ClientPut("k", "v"))
        session.run_for(500)
        session.act(actions.RestartLeader())
        session.run_for(3_000)
        return [line.text for line in session.narration()]

    assert run() == run()


def test_an_action_is_told_in_the_narration_and_marked_on_the_scrubber() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(2_000)
    session.act(actions.Crash(2))
    last = session.narration()[-2:]
    assert [line.text for line in last] == ["you: crash n2", "n2 crashed"]
    assert last[0].source is Source.ACTION and last[1].source is Source.SIM
    kinds = [(mark.position, mark.kind) for mark in session.marks[-2:]]
    assert kinds == [(session.position, MarkKind.ACTION), (session.position, MarkKind.CRASH)]


def test_narration_since_returns_only_the_newer_lines() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(2_000)
    seen = len(session.narration())
    session.act(actions.Crash(1))
    assert [line.index for line in session.narration(since=seen)] == [seen, seen + 1]


def test_restart_leader_brings_a_leader_of_a_later_term() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(3_000)
    old = leader_of(session)
    term = session.cluster.nodes[old].term
    session.act(actions.RestartLeader())
    assert not session.cluster.nodes[old].up
    session.run_for(5_000)
    new = leader_of(session)
    assert session.cluster.nodes[new].term > term, "seed 7"
    assert session.cluster.nodes[old].up


def test_a_client_put_is_applied_on_every_member() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(2_000)
    session.act(actions.ClientPut("greeting", "hello"))
    session.run_for(1_000)
    assert [node.get("greeting") for node in session.cluster.nodes.values()] == ["hello"] * 3


def test_run_for_stops_at_the_end_of_its_slice() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(250)
    due = session.cluster.next_time()
    assert session.now == 250 and due is not None and due > 250


def test_partition_and_heal_are_marked() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(2_000)
    leader = leader_of(session)
    session.act(actions.Partition.of([leader]))
    session.run_for(3_000)
    roles = [n.role for i, n in session.cluster.nodes.items() if i != leader]
    assert Role.LEADER in roles, "the majority side elects its own leader [seed 7]"
    session.act(actions.Heal())
    kinds = {mark.kind for mark in session.marks}
    assert {MarkKind.PARTITION, MarkKind.HEAL} <= kinds
