"""Figure 8 of the Raft paper (§5.4.2), played on kv's simulator: an entry of an earlier term
that sits on a majority is not committed by counting replicas, and may be overwritten (d); it
is committed with the first entry of the leader's own term that reaches a majority (e)."""

from __future__ import annotations

from kv.raft import events as ev
from kv.sim import Cluster
from tests.tui.playing import Played, play
from tui.session.scenarios import FIGURE_8, FIGURE_8_COMMITTED
from tui.session.scenarios.figure8 import entry_term


def holders(cluster: Cluster, index: int, term: int) -> list[int]:
    """The nodes whose log holds an entry of ``term`` at ``index``."""
    return [i for i in cluster.ids if entry_term(cluster, i, index) == term]


def at_c(played: Played) -> Cluster:
    """The cluster when the step "(c)" fired."""
    return played.at[played.step_of("(c)")]


def test_at_c_the_term_2_entry_is_on_a_majority_of_term_4_and_no_commit_index_covers_it() -> None:
    for scenario in (FIGURE_8, FIGURE_8_COMMITTED):
        played = play(scenario)
        cluster = at_c(played)
        assert holders(cluster, 2, 2) == [1, 2, 3], played
        assert holders(cluster, 3, 4) == [1, 2], f"{played}: the term-4 entry is on a majority"
        assert cluster.nodes[1].term == 4
        assert all(node.commit == 1 for node in cluster.nodes.values()), played
        committed = [e for e in played.events(ev.Committed, cluster) if e.index >= 2]
        assert committed == [], played


def test_at_c_the_leader_counts_a_majority_for_index_2_and_still_does_not_commit_it() -> None:
    played = play(FIGURE_8_COMMITTED)
    status = at_c(played).nodes[1].status()
    assert status is not None and status.hard_state.term == 4, played
    matches = {node: p.match for node, p in status.progress.items()}
    assert sum(match >= 2 for match in matches.values()) >= 3, f"{played}: {matches}"
    assert status.hard_state.commit == 1


def test_d_a_new_leader_overwrites_the_uncommitted_term_2_entry_everywhere_safely() -> None:
    played = play(FIGURE_8)  # play() fails on a safety violation
    cluster = played.session.cluster
    assert holders(cluster, 2, 3) == [1, 2, 3, 4, 5], played
    assert cluster.leader() == 5 and cluster.nodes[5].term == 5
    assert all(node.commit >= 3 for node in cluster.nodes.values())
    assert all(status.holds for status in played.session.safety()), played


def test_e_the_term_2_entry_is_committed_with_the_leaders_term_4_entry_and_kept() -> None:
    played = play(FIGURE_8_COMMITTED)
    cluster = played.session.cluster
    # n1's commit index went from 1 straight to 3: index 2 never counted on its own.
    commits = [e.index for e in played.events(ev.Committed) if e.node == 1 and e.term == 4]
    assert commits and commits[0] == 3, played
    assert holders(cluster, 2, 2) == [1, 2, 3, 4, 5], f"{played}: n5's term-3 entry stayed"
    assert all(node.commit >= 3 for node in cluster.nodes.values())
    assert all(status.holds for status in played.session.safety()), played
