"""What the inspectors show, computed from the cluster's public state: the pending events
(choose-the-next-event mode), what changed since the previous event, and the four safety
properties.
"""

from __future__ import annotations

import enum
from dataclasses import astuple, dataclass, fields

from kv.raft.events import name
from kv.sim import Cluster, SimNode
from kv.sim.timeline.tasks import PendingTask, TaskKind
from tui.session.narration import describe_message
from tui.session.timeline import Freeze

# -- choose the next event -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending message or timer (`kv.sim.timeline.tasks.PendingTask`) for the next-event table.
    ``id`` is what `tui.session.actions.Deliver` and friends take; ``frm`` is 0 when the task
    has no sender (a timer, a disk write)."""

    id: int
    time_ms: int
    kind: str  # "message", "timer", "disk", "client", "operator", "fault"
    frm: int
    to: int
    summary: str

    @property
    def is_message(self) -> bool:
        return self.kind == TaskKind.MESSAGE.value


def pending(cluster: Cluster) -> list[Pending]:
    """Every pending task, in the order the simulator would run them."""
    return [_pending(cluster, task) for task in cluster.control.pending()]


def _pending(cluster: Cluster, task: PendingTask) -> Pending:
    if task.message is not None:
        message = task.message
        summary = describe_message(message)
        return Pending(task.id, task.time, task.kind.value, message.from_, message.to, summary)
    summary = task.kind.value
    if task.kind is TaskKind.TICK:
        timer = cluster.nodes[task.node].election_timer
        summary = f"{name(task.node)} ticks"
        if timer is not None:
            summary += f" (election timer {timer[0]}/{timer[1]})"
    elif task.kind is TaskKind.DISK:
        summary = f"{name(task.node)} finishes writing to disk (then sends and applies)"
    return Pending(task.id, task.time, task.kind.value, 0, task.node, summary)


# -- what changed --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeState:
    """One member's state as the nodes pane shows it (``role`` is "down" while down)."""

    role: str
    term: int
    vote: int
    lead: int
    commit: int
    applied: int
    last_index: int
    first_index: int


def node_state(node: SimNode) -> NodeState:
    hard = node.hard_state
    role = str(node.role) if node.role is not None else "down"
    log = node.log
    first = log[0].index if log else node.last_index + 1
    return NodeState(
        role, hard.term, hard.vote, node.lead, node.commit, node.applied, node.last_index, first
    )


def states(cluster: Cluster) -> dict[int, NodeState]:
    return {node_id: node_state(node) for node_id, node in sorted(cluster.nodes.items())}


@dataclass(frozen=True, slots=True)
class Change:
    """``field`` of ``node`` went from ``before`` to ``after`` (``before`` None: a new
    member)."""

    node: int
    field: str
    before: object
    after: object

    def __str__(self) -> str:
        return f"{name(self.node)} {self.field}: {self.before} -> {self.after}"


def changes(before: dict[int, NodeState], after: dict[int, NodeState]) -> list[Change]:
    found = []
    names = [f.name for f in fields(NodeState)]
    for node, state in after.items():
        old = before.get(node)
        old_values = astuple(old) if old is not None else (None,) * len(names)
        for field_name, was, now in zip(names, old_values, astuple(state), strict=True):
            if was != now:
                found.append(Change(node, field_name, was, now))
    return found


# -- the four properties -------------------------------------------------------------------


class Property(enum.Enum):
    """Raft's safety properties (Figure 3) that the panel shows."""

    ELECTION_SAFETY = "Election Safety"
    LOG_MATCHING = "Log Matching"
    LEADER_COMPLETENESS = "Leader Completeness"
    STATE_MACHINE_SAFETY = "State Machine Safety"


@dataclass(frozen=True, slots=True)
class PropertyStatus:
    property: Property
    holds: bool
    detail: str


_CHECKED = {
    Property.ELECTION_SAFETY: "at most one leader per term: checked at every election",
    Property.LOG_MATCHING: "same index and term, same entries before: checked on the logs now",
    Property.LEADER_COMPLETENESS: "a new leader holds every committed entry: checked when "
    "it is elected",
    Property.STATE_MACHINE_SAFETY: "one entry committed and applied per index: checked at "
    "every commit and apply",
}


def safety(cluster: Cluster, freeze: Freeze | None) -> list[PropertyStatus]:
    """The four properties: each holds unless the monitor's violation (``freeze``) names
    it, or -- Log Matching -- two logs now disagree below a common entry."""
    mismatch = log_mismatch(cluster)
    result = []
    for prop in Property:
        broken = freeze is not None and _names(freeze.message, prop)
        if prop is Property.LOG_MATCHING and mismatch is not None:
            result.append(PropertyStatus(prop, False, mismatch))
        elif broken and freeze is not None:
            result.append(PropertyStatus(prop, False, freeze.message))
        else:
            result.append(PropertyStatus(prop, True, _CHECKED[prop]))
    return result


def _names(message: str, prop: Property) -> bool:
    if prop is Property.STATE_MACHINE_SAFETY:
        return prop.value in message or "which no node has committed" in message
    return prop.value in message


def log_mismatch(cluster: Cluster) -> str | None:
    """Two members hold an entry of the same index and term but differ before it (Log
    Matching broken), or None. Compares every pair of logs over what both still hold."""
    logs = {i: {e.index: e for e in node.log} for i, node in sorted(cluster.nodes.items())}
    ids = sorted(logs)
    for a_pos, a in enumerate(ids):
        for b in ids[a_pos + 1 :]:
            common = sorted(set(logs[a]) & set(logs[b]))
            agreed = [i for i in common if logs[a][i].term == logs[b][i].term]
            if not agreed:
                continue
            top = agreed[-1]
            for index in common:
                if index <= top and logs[a][index] != logs[b][index]:
                    return (
                        f"{name(a)} and {name(b)} both hold index {top} at term "
                        f"{logs[a][top].term} but differ at {index}"
                    )
    return None
