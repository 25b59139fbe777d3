"""What a person can do to the simulated cluster, as data: the TUI's actions.

Every key that changes the cluster (a client put, a crash, a partition, a hand-delivered
message...) becomes one of these frozen dataclasses, recorded on the session's timeline at
the position where it was taken. A run is then a pure function of (seed, configuration,
actions at positions): replaying the actions replays the run, and a trace file is the same
list as JSON (`to_json` / `from_json`, `tui.session.trace`).

Each action's ``apply(cluster)`` uses only `kv.sim.Cluster`'s public surface, and its ``str``
is the sentence the event log shows ("you crashed n2"). Actions that name "the leader"
resolve it when they are applied, as `kv.sim.faults` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from kv.raft import Role
from kv.raft.events import name
from kv.sim import Cluster, SimEvent
from kv.sim import Restart as RestartFault
from kv.sim.network import describe_groups


class Action(Protocol):
    """Something done to the cluster at one position of a timeline."""

    def apply(self, cluster: Cluster) -> None: ...


@dataclass(frozen=True, slots=True)
class ActionTaken(SimEvent):
    """The event log's line for an action (it goes in `kv.sim.Cluster.events`)."""

    description: str

    def __str__(self) -> str:
        return f"you: {self.description}"


# -- clients -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientPut:
    """A client puts ``key`` = ``value`` (RaftScope's ``c``)."""

    key: str
    value: str

    def apply(self, cluster: Cluster) -> None:
        idle = [c for c in cluster.clients if c.current is None and c.follows_members]
        client = idle[0] if idle else cluster.client()
        client.put(self.key, self.value)

    def __str__(self) -> str:
        return f"put {self.key}={self.value}"


# -- crashes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Crash:
    node: int

    def apply(self, cluster: Cluster) -> None:
        if cluster.nodes[self.node].up:
            cluster.crash(self.node)

    def __str__(self) -> str:
        return f"crash {name(self.node)}"


@dataclass(frozen=True, slots=True)
class Restart:
    node: int

    def apply(self, cluster: Cluster) -> None:
        RestartFault(self.node).apply(cluster)

    def __str__(self) -> str:
        return f"restart {name(self.node)}"


@dataclass(frozen=True, slots=True)
class RestartLeader:
    """Crash whoever leads; it restarts from its disk ``down_ms`` later (RaftScope's ``r``)."""

    down_ms: int = 500

    def apply(self, cluster: Cluster) -> None:
        leader = cluster.leader()
        if leader is not None:
            cluster.crash(leader)
            cluster.at(cluster.now + self.down_ms, RestartFault(leader))

    def __str__(self) -> str:
        return f"restart the leader (down for {self.down_ms}ms)"


@dataclass(frozen=True, slots=True)
class Amnesia:
    """Restart ``node`` (crashing it first if it runs) from an EMPTY disk: it forgets its
    votes and log. Raft does not survive this (Figure 2's "persistent state"): the safety
    monitor may fire -- the way to watch it fire."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        if cluster.nodes[self.node].up:
            cluster.crash(self.node)
        cluster.restart(self.node, wipe_disk=True)

    def __str__(self) -> str:
        return f"restart {name(self.node)} with its disk wiped (amnesia)"


# -- the network ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    """Members in different groups cannot talk (members in no group form one more)."""

    groups: tuple[tuple[int, ...], ...]

    def apply(self, cluster: Cluster) -> None:
        cluster.partition(*self.groups)

    def __str__(self) -> str:
        return f"partition {describe_groups(self.groups)}"


@dataclass(frozen=True, slots=True)
class Cut:
    """One way: what ``frm`` sends to ``to`` is lost."""

    frm: tuple[int, ...]
    to: tuple[int, ...]

    def apply(self, cluster: Cluster) -> None:
        cluster.cut(self.frm, self.to)

    def __str__(self) -> str:
        return f"cut {describe_groups([self.frm])} -/-> {describe_groups([self.to])}"


@dataclass(frozen=True, slots=True)
class Heal:
    def apply(self, cluster: Cluster) -> None:
        cluster.heal()

    def __str__(self) -> str:
        return "heal the network"


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """The link ``frm`` -> ``to`` loses ``loss`` of its messages and is ``delay_ms`` slower."""

    frm: int
    to: int
    loss: float
    delay_ms: int

    def apply(self, cluster: Cluster) -> None:
        cluster.set_link(self.frm, self.to, self.loss, self.delay_ms)

    def __str__(self) -> str:
        return (
            f"make {name(self.frm)} -> {name(self.to)} lose {self.loss:.0%} "
            f"and {self.delay_ms}ms slower"
        )


# -- leadership and membership -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferLeader:
    node: int

    def apply(self, cluster: Cluster) -> None:
        cluster.transfer_leader(self.node)

    def __str__(self) -> str:
        return f"transfer leadership to {name(self.node)}"


@dataclass(frozen=True, slots=True)
class Timeout:
    """``node`` times out now and campaigns (RaftScope's "time out" on a server)."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        cluster.control.campaign(self.node)

    def __str__(self) -> str:
        return f"time {name(self.node)} out: it campaigns"


@dataclass(frozen=True, slots=True)
class AddLearner:
    def apply(self, cluster: Cluster) -> None:
        cluster.membership.add_learner()

    def __str__(self) -> str:
        return "add a learner"


@dataclass(frozen=True, slots=True)
class Promote:
    """Promote learner ``node`` (0: the oldest learner) once it has caught up."""

    node: int = 0

    def apply(self, cluster: Cluster) -> None:
        cluster.membership.promote(self.node or None)

    def __str__(self) -> str:
        return f"promote {name(self.node) if self.node else 'the oldest learner'}"


@dataclass(frozen=True, slots=True)
class Remove:
    """Remove ``node`` (0: whoever leads when the change starts)."""

    node: int = 0

    def apply(self, cluster: Cluster) -> None:
        if self.node:
            cluster.membership.remove(self.node)
        else:
            cluster.membership.remove_leader()

    def __str__(self) -> str:
        return f"remove {name(self.node) if self.node else 'the leader'}"


# -- timers (RaftScope's t and a) ----------------------------------------------------------


def _electors(cluster: Cluster) -> list[int]:
    return [i for i in cluster.up() if cluster.nodes[i].role is not Role.LEADER]


@dataclass(frozen=True, slots=True)
class SpreadTimers:
    """Spread the election timers of everyone but the leader over one election timeout, so
    that one member times out well before the next (RaftScope's ``t``)."""

    def apply(self, cluster: Cluster) -> None:
        electors = _electors(cluster)
        timeout = cluster.config.election_timeout_ms
        for k, node in enumerate(electors):
            cluster.control.set_election_timer(
                node, cluster.now + timeout + k * timeout // len(electors)
            )

    def __str__(self) -> str:
        return "spread the election timers"


@dataclass(frozen=True, slots=True)
class AlignTimers:
    """Make everyone but the leader time out at the same moment: split votes (``a``)."""

    def apply(self, cluster: Cluster) -> None:
        at = cluster.now + cluster.config.election_timeout_ms
        for node in _electors(cluster):
            cluster.control.set_election_timer(node, at)

    def __str__(self) -> str:
        return "align the election timers"


# -- choose the next event (DSLabs) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    """Run pending task ``id`` now: deliver a message, fire a timer, finish a write."""

    id: int

    def apply(self, cluster: Cluster) -> None:
        cluster.control.run_task(self.id)

    def __str__(self) -> str:
        return f"deliver #{self.id} now"


@dataclass(frozen=True, slots=True)
class Drop:
    id: int

    def apply(self, cluster: Cluster) -> None:
        cluster.control.drop_message(self.id)

    def __str__(self) -> str:
        return f"drop message #{self.id}"


@dataclass(frozen=True, slots=True)
class Duplicate:
    id: int

    def apply(self, cluster: Cluster) -> None:
        cluster.control.duplicate_message(self.id)

    def __str__(self) -> str:
        return f"duplicate message #{self.id}"


@dataclass(frozen=True, slots=True)
class Delay:
    id: int
    ms: int

    def apply(self, cluster: Cluster) -> None:
        cluster.control.delay_task(self.id, self.ms)

    def __str__(self) -> str:
        return f"delay #{self.id} by {self.ms}ms"


# -- narration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Note:
    """A line of a scenario's narration; changes nothing (recorded so that replays and
    traces tell the story too)."""

    text: str

    def apply(self, cluster: Cluster) -> None:
        del cluster

    def __str__(self) -> str:
        return self.text


ACTIONS: dict[str, type[Action]] = {
    cls.__name__: cls
    for cls in (
        ClientPut,
        Crash,
        Restart,
        RestartLeader,
        Amnesia,
        Partition,
        Cut,
        Heal,
        LinkFaults,
        TransferLeader,
        Timeout,
        AddLearner,
        Promote,
        Remove,
        SpreadTimers,
        AlignTimers,
        Deliver,
        Drop,
        Duplicate,
        Delay,
        Note,
    )
}
"""Every action, by the name a trace file gives it."""


def to_json(action: Action) -> dict[str, Any]:
    """``{"type": "Crash", "node": 2}``."""
    if not dataclasses.is_dataclass(action) or isinstance(action, type):
        raise TypeError(f"not an action: {action!r}")
    return {"type": type(action).__name__, **dataclasses.asdict(action)}


def from_json(data: dict[str, Any]) -> Action:
    """The action `to_json` wrote (lists come back as tuples).

    Raises:
        ValueError: an unknown type or fields.
    """
    fields = dict(data)
    kind = fields.pop("type", None)
    cls = ACTIONS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown action {kind!r}")
    try:
        return cls(**{key: _tuples(value) for key, value in fields.items()})
    except TypeError as error:
        raise ValueError(f"bad fields for {kind}: {error}") from None


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value
