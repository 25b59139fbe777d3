"""The lease scenario of the TUI (``s 0``), played to its end: it checks what it teaches.
(That a copy of it plays on identically is tests/tui/test_scenarios.py's.)"""

from __future__ import annotations

from kv.raft import Role
from kv.sim import LeaseEvent
from tests.tui.playing import Played, play
from tui.session.scenarios import LEASE_ACROSS_A_LEADER_CHANGE
from tui.session.scenarios.leases import KEY, LEASE, TTL


def lease_lines(played: Played) -> list[tuple[int, LeaseEvent]]:
    return [
        (t.time, t.event) for t in played.session.cluster.events if isinstance(t.event, LeaseEvent)
    ]


def test_the_deposed_leader_decided_the_lease_was_over_while_leading_and_dropped_its_revoke() -> (
    None
):
    played = play(LEASE_ACROSS_A_LEADER_CHANGE)
    decided = played.at[played.step_of("n1's clock says the lease is over")]
    assert decided.nodes[1].role is Role.LEADER, played  # it still believed it led
    old_lines = [event.what for _, event in lease_lines(played) if event.node == 1]
    assert old_lines == [
        "expired: confirming leadership in term 1",
        "not revoked: n1 no longer leads term 1",
    ], played
    dropped = played.at[played.step_of("n1 no longer leads")]
    assert all(dropped.nodes[n].get(KEY) == "held" for n in dropped.ids), played


def test_the_new_leader_revokes_the_lease_only_once_its_ttl_ran_out_after_the_last_keep_alive() -> (
    None
):
    played = play(LEASE_ACROSS_A_LEADER_CHANGE)
    cluster = played.session.cluster
    [revoke] = cluster.expiry.revokes
    renewed = [op for op in cluster.keepalives.ops if op.renewed]
    assert renewed and revoke.node != 1, played
    assert revoke.proposed_at >= max(op.call_time for op in renewed) + TTL * 1000, played
    assert (revoke.lease, cluster.nodes[revoke.node].get(KEY)) == (LEASE, None), played


def test_the_lease_scenario_replays_from_a_rewind() -> None:
    session = play(LEASE_ACROSS_A_LEADER_CHANGE).session
    lines = [str(line) for line in session.narration()]
    end = session.position
    session.seek(end // 2)
    session.seek(end)
    assert [str(line) for line in session.narration()] == lines
