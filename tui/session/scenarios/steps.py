"""A scenario's parts, as data: `Step`s whose conditions and scripts are named objects.

A `Step` waits for a `Condition` on the cluster ("someone leads", "n2 caught up"), then runs
its `Script` -- the actions to take, worked out from the cluster and from what earlier steps
remembered (``Memory``: "old" is the node that led before the crash) -- and shows its line.
Conditions and scripts are frozen dataclasses (or plain module functions), never lambdas or
closures: a scenario is plain data, equal to itself, printable, and a `ScenarioRun` inside a
copied session (``copy.deepcopy``) is a sound copy that plays on exactly as the original.

The conditions here are shared by several scenarios; a scenario's own live beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kv.raft import Role
from kv.raft import events as ev
from kv.sim import Cluster, SimConfig
from tui.session.actions import Action

#: What a step remembers for later steps (e.g. which node led before the crash).
Memory = dict[str, int]


class Condition(Protocol):
    """When a step fires: checked after every entry of the session. It may remember what
    it saw in ``memory`` (only when it returns True)."""

    def __call__(self, cluster: Cluster, memory: Memory, /) -> bool: ...


class Script(Protocol):
    """What a step does once its condition holds: the actions to take, in order."""

    def __call__(self, cluster: Cluster, memory: Memory, /) -> Sequence[Action]: ...


@dataclass(frozen=True, slots=True)
class Take:
    """These actions, always the same."""

    actions: tuple[Action, ...] = ()

    def __call__(self, cluster: Cluster, memory: Memory) -> Sequence[Action]:
        return self.actions


#: A step that only narrates.
NOTHING = Take()


@dataclass(frozen=True, slots=True)
class OnNode:
    """One action on the node an earlier step remembered: ``OnNode(Crash, "old")``."""

    action: Callable[[int], Action]
    key: str

    def __call__(self, cluster: Cluster, memory: Memory) -> Sequence[Action]:
        return [self.action(memory[self.key])]


@dataclass(frozen=True, slots=True)
class Then:
    """Several scripts' actions, one script after the other."""

    scripts: tuple[Script, ...]

    def __call__(self, cluster: Cluster, memory: Memory) -> Sequence[Action]:
        return [action for script in self.scripts for action in script(cluster, memory)]


@dataclass(frozen=True, slots=True)
class Step:
    """Once ``when`` holds: take ``do``'s actions and show ``text`` (formatted with the
    memory), pausing if ``pause``."""

    text: str
    when: Condition
    do: Script = NOTHING
    pause: bool = True


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    steps: tuple[Step, ...]
    nodes: int = 3
    seed: int = 7
    config: SimConfig = field(default_factory=SimConfig)


@dataclass(frozen=True, slots=True)
class Cue:
    """What the UI shows when a step fires: ``step 2 of 4: ...``."""

    number: int
    of: int
    text: str
    pause: bool

    def __str__(self) -> str:
        return f"step {self.number} of {self.of}: {self.text}"


@dataclass(slots=True)
class ScenarioRun:
    """A scenario being played on a session: which step is next, what it remembered."""

    scenario: Scenario
    next_step: int = 0
    memory: Memory = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.next_step >= len(self.scenario.steps)

    def poll(self, cluster: Cluster) -> tuple[Cue, list[Action]] | None:
        """If the next step's condition holds: its cue and its actions (the step is taken)."""
        if self.done:
            return None
        step = self.scenario.steps[self.next_step]
        if not step.when(cluster, self.memory):
            return None
        self.next_step += 1
        taken = list(step.do(cluster, self.memory))
        text = step.text.format(**self.memory)
        return Cue(self.next_step, len(self.scenario.steps), text, step.pause), taken


# -- conditions shared by scenarios --------------------------------------------------------


def always(cluster: Cluster, memory: Memory) -> bool:
    """At once (the step right after the previous one)."""
    return True


@dataclass(frozen=True, slots=True)
class Leads:
    """A node that has not led in this scenario yet leads: remember it as ``key`` and its
    term as ``key_term``."""

    key: str

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        leader = cluster.leader()
        if leader is None or f"led_{leader}" in memory:
            return False
        memory[self.key], memory[self.key + "_term"] = leader, cluster.nodes[leader].term
        memory[f"led_{leader}"] = 1
        return True


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Node ``key`` runs and has applied everything the leader committed."""

    key: str

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        leader = cluster.leader()
        node = cluster.nodes.get(memory.get(self.key, 0))
        if leader is None or node is None or not node.up:
            return False
        return node.applied >= cluster.nodes[leader].commit > 0


@dataclass(frozen=True, slots=True)
class NodeLeads:
    """Node ``node`` (a fixed one) leads."""

    node: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        return cluster.nodes[self.node].role is Role.LEADER


@dataclass(frozen=True, slots=True)
class CannotWin:
    """Node ``node`` is a candidate that lost its election: counting the votes granted and
    the members still up that have not answered, it cannot reach a majority (they voted
    for someone else in this term, or its log is behind theirs). Raft does not say so; the
    candidate just times out again (§5.2)."""

    node: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        node = cluster.nodes[self.node]
        if node.role is not Role.CANDIDATE:
            return False
        voters = cluster.membership.voters()
        granted, rejected = {self.node}, set[int]()
        for timed in cluster.events:
            event = timed.event
            if (
                isinstance(event, ev.VoteGranted | ev.VoteRejected)
                and not event.pre_vote
                and (event.candidate, event.term) == (self.node, node.term)
            ):
                answered = granted if isinstance(event, ev.VoteGranted) else rejected
                answered.add(event.node)
        unanswered = [i for i in voters if i not in granted | rejected and cluster.nodes[i].up]
        return len(granted) + len(unanswered) <= len(voters) // 2


def events_since(cluster: Cluster, time: int) -> list[ev.Event]:
    """The core's events from virtual time ``time`` on."""
    return [t.event for t in cluster.events if t.time >= time and isinstance(t.event, ev.Event)]
