"""Membership changes as steps of a scenario, and a seed's churn of them (chapter 5).

Each step is a small frozen dataclass with an ``apply(cluster)`` and a one-line ``str``, as
faults are (`kv.sim.faults.scenario`), so it goes in a `Scenario` beside them: when its time
comes it only queues one operation with the operator (``cluster.membership``,
`kv.sim.membership.operator.Membership`), which does one at a time. `churn_for` draws a seed's
schedule of them: ``python -m kv.sim --seed 7 --faults --membership`` replays one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kv.raft.events import name
from kv.sim.faults.scenario import Fault, Scenario

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster


@dataclass(frozen=True, slots=True)
class AddLearner:
    """Queue: add a new member as a learner (``etcdctl member add --learner``)."""

    def apply(self, cluster: Cluster) -> None:
        cluster.membership.add_learner()

    def __str__(self) -> str:
        return "add a learner"


@dataclass(frozen=True, slots=True)
class PromoteLearner:
    """Queue: promote ``node`` (0: the oldest learner) once caught up (``member promote``)."""

    node: int = 0

    def apply(self, cluster: Cluster) -> None:
        cluster.membership.promote(self.node or None)

    def __str__(self) -> str:
        return f"promote {name(self.node)}" if self.node else "promote the oldest learner"


@dataclass(frozen=True, slots=True)
class RemoveMember:
    """Queue: remove ``node`` (``etcdctl member remove``)."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        cluster.membership.remove(self.node)

    def __str__(self) -> str:
        return f"remove {name(self.node)}"


@dataclass(frozen=True, slots=True)
class RemoveLeader:
    """Queue: remove whoever leads when the operation starts (if ``keep_voters`` are left)."""

    keep_voters: int = 1

    def apply(self, cluster: Cluster) -> None:
        cluster.membership.remove_leader(keep_voters=self.keep_voters)

    def __str__(self) -> str:
        return "remove the leader" + _keeping(self.keep_voters)


@dataclass(frozen=True, slots=True)
class RemoveFollower:
    """Queue: remove a voter that does not lead (the ``pick``-th, in id order, modulo)."""

    pick: int
    keep_voters: int = 1

    def apply(self, cluster: Cluster) -> None:
        cluster.membership.remove_follower(self.pick, keep_voters=self.keep_voters)

    def __str__(self) -> str:
        return f"remove a voting follower (choice {self.pick})" + _keeping(self.keep_voters)


def _keeping(voters: int) -> str:
    return f" if {voters} voters remain" if voters > 1 else ""


def membership_churn(
    rng: random.Random,
    duration_ms: int,
    *,
    gap_ms: tuple[int, int] = (300, 900),
    remove_leader: float = 1 / 3,
    keep_voters: int = 3,
) -> Scenario:
    """Members coming and going during ``duration_ms``, drawn from ``rng``: add a learner,
    promote it, remove a voter (the leader with probability ``remove_leader``) if
    ``keep_voters`` remain, and again. Each step only queues its operation, and the operator
    does one at a time, so a step waits for the one before it: a promotion, for instance,
    until the learner has caught up."""
    steps: list[tuple[int, Fault]] = []
    time = rng.randint(*gap_ms)
    while time < duration_ms:
        removal: Fault = (
            RemoveLeader(keep_voters)
            if rng.random() < remove_leader
            else RemoveFollower(rng.randrange(4), keep_voters)
        )
        for step in (AddLearner(), PromoteLearner(), removal):
            steps.append((time, step))
            time += rng.randint(*gap_ms)
    return Scenario.of(*steps)


def churn_for(seed: int, duration_ms: int) -> Scenario:
    """The membership churn of a seed (`membership_churn`), from the clients' start."""
    return membership_churn(random.Random(f"{seed}/membership"), duration_ms)
