"""Scenarios about members: a lagging follower caught up by a snapshot (Raft §7), a learner
added and promoted (thesis §4.2.1), the leader removed (thesis §4.2.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    events_since,
)

#: Writes of the snapshot scenario: k0=v0 ... k11=v11.
WRITES = 12


def puts(count: int) -> list[Action]:
    """``count`` client puts: k0=v0, k1=v1, ..."""
    return [actions.ClientPut(f"k{i}", f"v{i}") for i in range(count)]


def crash_a_follower_and_write(cluster: Cluster, memory: Memory) -> Sequence[Action]:
    """Crash a follower (remember it as ``lagging``) and write while it is down."""
    lagging = next(i for i in cluster.ids if i != memory["old"])
    memory["lagging"] = lagging
    return [actions.Crash(lagging), *puts(WRITES)]


def others_applied_the_writes(cluster: Cluster, memory: Memory) -> bool:
    return all(cluster.nodes[i].applied >= WRITES for i in cluster.up())


def snapshot_restored(cluster: Cluster, memory: Memory) -> bool:
    """The ``lagging`` node restored a snapshot the leader sent."""
    return any(
        isinstance(e, ev.SnapshotRestored) and e.node == memory["lagging"]
        for e in events_since(cluster, 0)
    )


SNAPSHOT_CATCH_UP = Scenario(
    "6",
    "Lagging follower caught up by snapshot: its entries were compacted away (Raft §7)",
    (
        Step(
            f"n{{old}} leads term {{old_term}}; crash n{{lagging}} and write {WRITES} keys",
            Leads("old"),
            crash_a_follower_and_write,
        ),
        Step(
            "the others applied the writes and compacted their logs; restart n{lagging}",
            others_applied_the_writes,
            OnNode(actions.Restart, "lagging"),
        ),
        Step("n{lagging} got the leader's snapshot instead of the entries", snapshot_restored),
        Step("n{lagging} caught up", CaughtUp("lagging")),
    ),
    config=SimConfig(snapshot_every=4, snapshot_keep=1),
)


def learner_joined(cluster: Cluster, memory: Memory) -> bool:
    """A learner is a member: remember it as ``learner``."""
    learners = sorted(cluster.membership.learners)
    if not learners:
        return False
    memory["learner"] = learners[0]
    return True


@dataclass(frozen=True, slots=True)
class IsVoter:
    """Node ``key`` is a member and no longer a learner."""

    key: str

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        node = memory.get(self.key, 0)
        return node in cluster.ids and node not in cluster.membership.learners


LEARNER = Scenario(
    "7",
    "Learner added and promoted: it catches up without voting, then votes (thesis §4.2.1)",
    (
        Step(
            "n{old} leads term {old_term}; a client writes; add a learner",
            Leads("old"),
            Take((actions.ClientPut("k", "v"), actions.AddLearner())),
        ),
        Step("n{learner} joined as a learner: it gets the log but does not vote", learner_joined),
        Step(
            "n{learner} caught up; promote it",
            CaughtUp("learner"),
            OnNode(actions.PromoteLearner, "learner"),
        ),
        Step("n{learner} is a voter now", IsVoter("learner")),
    ),
)


def old_removed(cluster: Cluster, memory: Memory) -> bool:
    return cluster.membership.was_removed(memory["old"])


LEADER_REMOVED = Scenario(
    "8",
    "Leader removed: it steps down once it applies its own removal; the rest elect a leader",
    (
        Step(
            "n{old} leads term {old_term}; remove it",
            Leads("old"),
            OnNode(actions.RemoveMember, "old"),
        ),
        Step("n{old} applied its removal and shut down", old_removed),
        Step("n{new} leads the remaining members in term {new_term}", Leads("new")),
    ),
)
