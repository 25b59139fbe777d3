"""Scenarios about elections: a leader crash, a split vote, a partitioned leader with and
without PreVote and CheckQuorum (Raft §5.2, thesis §4.2.3 and §9.6)."""

from __future__ import annotations

from collections.abc import Sequence

from kv.raft import Role
from kv.raft import events as ev
from kv.sim import Cluster, SimConfig
from tui.session import actions
from tui.session.actions import Action
from tui.session.scenarios.steps import (
    CaughtUp,
    Leads,
    Memory,
    OnNode,
    Scenario,
    Step,
    Take,
    always,
    events_since,
)

LEADER_CRASH = Scenario(
    "1",
    "Leader crash: the followers time out and elect a new leader (Raft §5.2)",
    (
        Step("n{old} leads term {old_term}; crash it", Leads("old"), OnNode(actions.Crash, "old")),
        Step(
            "n{new} timed out first and won term {new_term}; restart n{old}",
            Leads("new"),
            OnNode(actions.Restart, "old"),
        ),
        Step("n{old} came back as a follower and caught up with n{new}", CaughtUp("old")),
    ),
)


def split(cluster: Cluster, memory: Memory) -> bool:
    """An election term with two candidates or more and no leader (since the timers were
    aligned): remember it as ``split_term``."""
    events = events_since(cluster, memory.get("aligned_at", 0))
    candidates: dict[int, set[int]] = {}
    for event in events:
        if isinstance(event, ev.BecameCandidate):
            candidates.setdefault(event.term, set()).add(event.node)
    led = {event.term for event in events if isinstance(event, ev.BecameLeader)}
    for term, nodes in sorted(candidates.items()):
        if len(nodes) >= 2 and term not in led and cluster.leader() is None:
            memory["split_term"] = term
            return True
    return False


def crash_and_align(cluster: Cluster, memory: Memory) -> Sequence[Action]:
    """Crash the leader and make the others time out together (RaftScope's ``a``)."""
    memory["aligned_at"] = cluster.now
    return [actions.Crash(memory["old"]), actions.AlignTimers()]


SPLIT_VOTE = Scenario(
    "2",
    "Split vote: followers that time out together split the votes; random timeouts end it",
    (
        Step(
            "n{old} leads term {old_term}; crash it and align the others' timers",
            Leads("old"),
            crash_and_align,
        ),
        Step("term {split_term}: every candidate voted for itself; nobody won", split),
        Step("n{new} timed out first this time and won term {new_term}", Leads("new")),
    ),
    nodes=5,
    config=SimConfig(pre_vote=False),
)


def isolate_old(cluster: Cluster, memory: Memory) -> Sequence[Action]:
    """Cut the leader (``old``) off from everyone else, both ways."""
    old = memory["old"]
    return [actions.Partition.of([old], [i for i in cluster.ids if i != old])]


def another_leader(cluster: Cluster, memory: Memory) -> bool:
    """Someone other than ``old`` leads (while ``old`` may still believe it does): remember
    it as ``new`` / ``new_term``, and ``new_at``, two election timeouts later."""
    leaders = [i for i, n in cluster.nodes.items() if n.role is Role.LEADER and i != memory["old"]]
    if not leaders:
        return False
    memory["new"], memory["new_term"] = leaders[0], cluster.nodes[leaders[0]].term
    memory["new_at"] = cluster.now + 2 * cluster.config.election_timeout_ms
    return True


def old_stepped_down(cluster: Cluster, memory: Memory) -> bool:
    """CheckQuorum: the isolated ``old`` leader stepped down by itself."""
    return cluster.nodes[memory["old"]].role is not Role.LEADER


def old_still_leads(cluster: Cluster, memory: Memory) -> bool:
    """Two election timeouts after the new leader, ``old`` still leads its old term."""
    return cluster.now >= memory["new_at"] and cluster.nodes[memory["old"]].role is Role.LEADER


def old_follows_new(cluster: Cluster, memory: Memory) -> bool:
    """``old`` follows ``new``, which is the one leader."""
    leaders = [i for i, n in cluster.nodes.items() if n.role is Role.LEADER]
    old = cluster.nodes[memory["old"]]
    return leaders == [memory["new"]] and (old.role, old.lead) == (Role.FOLLOWER, memory["new"])


def partitioned_leader(check_quorum: bool, key: str) -> Scenario:
    """The partitioned-leader scenario, with PreVote and CheckQuorum or without either."""
    if check_quorum:
        waits = Step(
            "n{old} heard from no majority for an election timeout: it stepped down",
            old_stepped_down,
        )
    else:
        waits = Step(
            "without CheckQuorum n{old} still believes it leads term {old_term}", old_still_leads
        )
    with_or_without = (
        "with PreVote and CheckQuorum" if check_quorum else "without PreVote or CheckQuorum"
    )
    return Scenario(
        key,
        f"Partitioned leader {with_or_without}",
        (
            Step(
                "n{old} leads term {old_term}; cut it off from the others",
                Leads("old"),
                isolate_old,
            ),
            Step("the majority elected n{new} in term {new_term}", another_leader),
            waits,
            Step(
                "heal: n{old} hears of term {new_term} and follows n{new}",
                always,
                Take((actions.Heal(),)),
            ),
            Step("one leader again: n{old} follows n{new} in term {new_term}", old_follows_new),
        ),
        config=SimConfig(pre_vote=check_quorum, check_quorum=check_quorum),
    )


PARTITIONED_LEADER = partitioned_leader(True, "4")
PARTITIONED_LEADER_BARE = partitioned_leader(False, "5")
