"""Scenarios one key away: scripts of actions triggered by the model's events, narrated.

In the manner of The Secret Lives of Data, but driven by the simulator rather than by a
clock: each `Step` waits for a condition on the cluster ("someone leads", "n2 caught up"),
then takes its actions and shows its line ("step 2 of 4: ..."), pausing there if it says so.
The conditions are checked after every entry of the session (`Session.play`), so a scenario
runs the same, entry for entry, whatever speed the UI runs at -- and its actions and lines
are recorded on the timeline like any other (`tui.session.actions.Note`): rewinding, forking
and traces work on scenarios too.

Every scenario is also a test (tests/tui/test_scenarios.py) that checks its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from kv.raft import Role
from kv.raft import events as ev
from kv.sim import Cluster, SimConfig
from tui.session import actions
from tui.session.actions import Action

#: What a step remembers for later steps (e.g. which node led before the crash).
Memory = dict[str, int]


@dataclass(frozen=True, slots=True)
class Step:
    """Once ``when(cluster, memory)`` holds: take ``do(cluster, memory)``'s actions and show
    ``text`` (formatted with ``memory``), pausing if ``pause``."""

    text: str
    when: Callable[[Cluster, Memory], bool]
    do: Callable[[Cluster, Memory], Sequence[Action]] = lambda cluster, memory: ()
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


# -- conditions and helpers ---------------------------------------------------------------


def _leads(memory_key: str) -> Callable[[Cluster, Memory], bool]:
    """Someone leads: remember who (``memory_key``) and in which term (``..._term``)."""

    def when(cluster: Cluster, memory: Memory) -> bool:
        leader = cluster.leader()
        if leader is None or f"led_{leader}" in memory:
            return False
        memory[memory_key], memory[memory_key + "_term"] = leader, cluster.nodes[leader].term
        memory[f"led_{leader}"] = 1
        return True

    return when


def _events_since(cluster: Cluster, time: int) -> list[ev.Event]:
    return [t.event for t in cluster.events if t.time >= time and isinstance(t.event, ev.Event)]


def _caught_up(node_key: str) -> Callable[[Cluster, Memory], bool]:
    def when(cluster: Cluster, memory: Memory) -> bool:
        leader = cluster.leader()
        node = cluster.nodes.get(memory.get(node_key, 0))
        if leader is None or node is None or not node.up:
            return False
        return node.applied >= cluster.nodes[leader].commit > 0

    return when


def _crash(key: str) -> Callable[[Cluster, Memory], Sequence[Action]]:
    return lambda cluster, memory: [actions.Crash(memory[key])]


def _always(cluster: Cluster, memory: Memory) -> bool:
    return True


# -- the scenarios ------------------------------------------------------------------------

LEADER_CRASH = Scenario(
    "1",
    "Leader crash: the followers time out and elect a new leader (Raft §5.2)",
    (
        Step("n{old} leads term {old_term}; crash it", _leads("old"), _crash("old")),
        Step(
            "n{new} timed out first and won term {new_term}; restart n{old}",
            _leads("new"),
            lambda cluster, memory: [actions.Restart(memory["old"])],
        ),
        Step(
            "n{old} came back as a follower and caught up with n{new}",
            _caught_up("old"),
        ),
    ),
)


def _split(cluster: Cluster, memory: Memory) -> bool:
    """An election term with two candidates or more and no leader."""
    events = _events_since(cluster, memory.get("aligned_at", 0))
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


def _crash_and_align(cluster: Cluster, memory: Memory) -> Sequence[Action]:
    memory["aligned_at"] = cluster.now
    return [actions.Crash(memory["old"]), actions.AlignTimers()]


SPLIT_VOTE = Scenario(
    "2",
    "Split vote: followers that time out together split the votes; random timeouts end it",
    (
        Step(
            "n{old} leads term {old_term}; crash it and align the others' timers",
            _leads("old"),
            _crash_and_align,
        ),
        Step("term {split_term}: every candidate voted for itself; nobody won", _split),
        Step("n{new} timed out first this time and won term {new_term}", _leads("new")),
    ),
    nodes=5,
    config=SimConfig(pre_vote=False),
)


def _isolate(cluster: Cluster, memory: Memory) -> Sequence[Action]:
    old = memory["old"]
    rest = tuple(i for i in cluster.ids if i != old)
    return [actions.Partition(((old,), rest))]


def _partitioned_leader(check_quorum: bool, key: str) -> Scenario:
    waits: Step
    if check_quorum:
        waits = Step(
            "n{old} heard from no majority for an election timeout: it stepped down",
            lambda cluster, memory: cluster.nodes[memory["old"]].role is not Role.LEADER,
        )
    else:
        waits = Step(
            "without CheckQuorum n{old} still believes it leads term {old_term}",
            lambda cluster, memory: (
                cluster.now >= memory.get("new_at", 1 << 60)
                and cluster.nodes[memory["old"]].role is Role.LEADER
            ),
        )
    remember = _leads("new")

    def new_leader(cluster: Cluster, memory: Memory) -> bool:
        if remember(cluster, memory) or _other_leader(cluster, memory):
            memory.setdefault("new_at", cluster.now + 2 * cluster.config.election_timeout_ms)
            return True
        return False

    return Scenario(
        key,
        "Partitioned leader "
        + ("with PreVote and CheckQuorum" if check_quorum else "without PreVote or CheckQuorum"),
        (
            Step(
                "n{old} leads term {old_term}; cut it off from the others", _leads("old"), _isolate
            ),
            Step("the majority elected n{new} in term {new_term}", new_leader),
            waits,
            Step(
                "heal: n{old} hears of term {new_term} and follows n{new}",
                _always,
                lambda cluster, memory: [actions.Heal()],
            ),
            Step("one leader again", _one_leader),
        ),
        config=SimConfig(pre_vote=check_quorum, check_quorum=check_quorum),
    )


def _other_leader(cluster: Cluster, memory: Memory) -> bool:
    leaders = [i for i, n in cluster.nodes.items() if n.role is Role.LEADER and i != memory["old"]]
    if not leaders:
        return False
    memory["new"], memory["new_term"] = leaders[0], cluster.nodes[leaders[0]].term
    return True


def _one_leader(cluster: Cluster, memory: Memory) -> bool:
    leaders = [i for i, n in cluster.nodes.items() if n.role is Role.LEADER]
    return len(leaders) == 1 and cluster.nodes[memory["old"]].role is Role.FOLLOWER


PARTITIONED_LEADER = _partitioned_leader(True, "4")
PARTITIONED_LEADER_BARE = _partitioned_leader(False, "5")


def _learner(cluster: Cluster, memory: Memory) -> bool:
    learners = sorted(cluster.membership.learners)
    if not learners:
        return False
    memory["learner"] = learners[0]
    return True


def _is_voter(key: str) -> Callable[[Cluster, Memory], bool]:
    def when(cluster: Cluster, memory: Memory) -> bool:
        node = memory.get(key, 0)
        return node in cluster.ids and node not in cluster.membership.learners

    return when


def _puts(count: int) -> Callable[[Cluster, Memory], Sequence[Action]]:
    return lambda cluster, memory: [actions.ClientPut(f"k{i}", f"v{i}") for i in range(count)]


LEARNER = Scenario(
    "7",
    "Learner added and promoted: it catches up without voting, then votes (thesis §4.2.1)",
    (
        Step(
            "n{old} leads term {old_term}; a client writes; add a learner",
            _leads("old"),
            lambda cluster, memory: [actions.ClientPut("k", "v"), actions.AddLearner()],
        ),
        Step("n{learner} joined as a learner: it gets the log but does not vote", _learner),
        Step(
            "n{learner} caught up; promote it",
            _caught_up("learner"),
            lambda cluster, memory: [actions.Promote(memory["learner"])],
        ),
        Step("n{learner} is a voter now", _is_voter("learner")),
    ),
)


def _removed(cluster: Cluster, memory: Memory) -> bool:
    return cluster.membership.was_removed(memory["old"])


LEADER_REMOVED = Scenario(
    "8",
    "Leader removed: it steps down once it applies its own removal; the rest elect a leader",
    (
        Step(
            "n{old} leads term {old_term}; remove it",
            _leads("old"),
            lambda cluster, memory: [actions.Remove(memory["old"])],
        ),
        Step("n{old} applied its removal and shut down", _removed),
        Step("n{new} leads the remaining members in term {new_term}", _leads("new")),
    ),
)


def _lag(cluster: Cluster, memory: Memory) -> Sequence[Action]:
    lagging = next(i for i in cluster.ids if i != memory["old"])
    memory["lagging"] = lagging
    return [actions.Crash(lagging), *_puts(12)(cluster, memory)]


def _snapshot_restored(cluster: Cluster, memory: Memory) -> bool:
    events = _events_since(cluster, 0)
    return any(isinstance(e, ev.SnapshotRestored) and e.node == memory["lagging"] for e in events)


SNAPSHOT_CATCH_UP = Scenario(
    "6",
    "Lagging follower caught up by snapshot: its entries were compacted away (Raft §7)",
    (
        Step(
            "n{old} leads term {old_term}; crash n{lagging} and write 12 keys", _leads("old"), _lag
        ),
        Step(
            "the others applied the writes and compacted their logs; restart n{lagging}",
            lambda cluster, memory: all(cluster.nodes[i].applied >= 12 for i in cluster.up()),
            lambda cluster, memory: [actions.Restart(memory["lagging"])],
        ),
        Step("n{lagging} got the leader's snapshot instead of the entries", _snapshot_restored),
        Step("n{lagging} caught up", _caught_up("lagging")),
    ),
    config=SimConfig(snapshot_every=4, snapshot_keep=1),
)


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        LEADER_CRASH,
        SPLIT_VOTE,
        PARTITIONED_LEADER,
        PARTITIONED_LEADER_BARE,
        SNAPSHOT_CATCH_UP,
        LEARNER,
        LEADER_REMOVED,
    )
}
"""Every scenario by its key (``s`` then the key, in the TUI)."""


def with_seed(scenario: Scenario, seed: int) -> Scenario:
    return replace(scenario, seed=seed)
