"""What a person can do to the simulated cluster, as data: the TUI's actions.

Every key that changes the cluster (a client put, a crash, a partition, a hand-delivered
message...) becomes a frozen dataclass with an ``apply(cluster)``, recorded on the session's
timeline at the position where it was taken. A run is then a pure function of (seed,
configuration, actions at positions): replaying the actions replays the run, and a trace file
is the same list as JSON (`to_json` / `from_json`, `tui.session.trace`).

Where an action is one of the simulator's faults or membership steps it IS that class
(`kv.sim.faults.scenario`: `Crash`, `Restart`, `Amnesia`, `Partition`, `Cut`, `Heal`, `LinkFaults`,
`TransferLeader`, `Timeout`; `kv.sim.membership.steps`: `AddLearner`, `PromoteLearner`,
`RemoveMember`, `RemoveLeader`), re-exported here so that this module names everything a
person can do. Defined here are only the TUI's own: a client put, a lease granted, a put with
it and keep-alives started and stopped (chapter 7), a leader restarted after a while,
election timers spread or aligned, the next event chosen by hand, a line of narration.

Each action's ``str`` is the sentence the event log shows ("you: crash n2"). Actions that
name "the leader" resolve it when they are applied, as `kv.sim.faults.scenario` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from kv.raft import Role
from kv.sim import Client, Cluster, SimEvent
from kv.sim.faults.scenario import (
    Amnesia,
    Crash,
    Cut,
    Fault,
    Heal,
    LinkFaults,
    Partition,
    Restart,
    Timeout,
    TransferLeader,
)
from kv.sim.membership.steps import AddLearner, PromoteLearner, RemoveLeader, RemoveMember
from tui.session.plain import from_fields, to_plain

__all__ = [
    "ACTIONS",
    "Action",
    "ActionTaken",
    "AddLearner",
    "AlignTimers",
    "Amnesia",
    "ClientLeaseGrant",
    "ClientLeasePut",
    "ClientPut",
    "Crash",
    "Cut",
    "Delay",
    "Deliver",
    "Drop",
    "Duplicate",
    "Heal",
    "KeepAlive",
    "LinkFaults",
    "Note",
    "Partition",
    "PromoteLearner",
    "RemoveLeader",
    "RemoveMember",
    "Restart",
    "RestartLeader",
    "SpreadTimers",
    "StopKeepAlive",
    "Timeout",
    "TransferLeader",
    "from_json",
    "to_json",
]


Action: TypeAlias = Fault
"""Something done to the cluster at one position of a timeline: what `kv.sim` calls a fault,
anything with an ``apply(cluster)``."""


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
        _idle_client(cluster).put(self.key, self.value)

    def __str__(self) -> str:
        return f"put {self.key}={self.value}"


def _idle_client(cluster: Cluster) -> Client:
    idle = [c for c in cluster.clients if c.current is None and c.follows_members]
    return idle[0] if idle else cluster.client()


@dataclass(frozen=True, slots=True)
class ClientLeaseGrant:
    """A client grants lease ``lease`` for ``ttl`` seconds (chapter 7)."""

    lease: int
    ttl: int

    def apply(self, cluster: Cluster) -> None:
        _idle_client(cluster).lease_grant(self.lease, self.ttl)

    def __str__(self) -> str:
        return f"grant lease {self.lease} (ttl {self.ttl}s)"


@dataclass(frozen=True, slots=True)
class ClientLeasePut:
    """A client puts ``key`` = ``value`` attached to lease ``lease`` (chapter 7)."""

    key: str
    value: str
    lease: int

    def apply(self, cluster: Cluster) -> None:
        _idle_client(cluster).lease_put(self.key, self.value, self.lease)

    def __str__(self) -> str:
        return f"put {self.key}={self.value} with lease {self.lease}"


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A client keeps lease ``lease`` alive through ``endpoints`` (empty: every member), a
    keep-alive every ``every_ms`` (`kv.sim.leases.keepalive`), until `StopKeepAlive`."""

    lease: int
    endpoints: tuple[int, ...] = ()
    every_ms: int = 600

    def apply(self, cluster: Cluster) -> None:
        endpoints = self.endpoints or None
        cluster.keepalives.keep(self.lease, endpoints, every_ms=self.every_ms)

    def __str__(self) -> str:
        through = " through " + ", ".join(f"n{n}" for n in self.endpoints) if self.endpoints else ""
        return f"keep lease {self.lease} alive{through}"


@dataclass(frozen=True, slots=True)
class StopKeepAlive:
    """Every client keeping lease ``lease`` alive stops: it will lapse."""

    lease: int

    def apply(self, cluster: Cluster) -> None:
        for keeper in cluster.keepalives.keepers:
            if keeper.lease == self.lease:
                keeper.stop()

    def __str__(self) -> str:
        return f"stop keeping lease {self.lease} alive"


# -- crashes (the leader's comeback) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestartLeader:
    """Crash whoever leads; it restarts from its disk ``down_ms`` later (RaftScope's ``r``)."""

    down_ms: int = 500

    def apply(self, cluster: Cluster) -> None:
        leader = cluster.leader()
        if leader is not None:
            cluster.crash(leader)
            cluster.at(cluster.now + self.down_ms, Restart(leader))

    def __str__(self) -> str:
        return f"restart the leader (down for {self.down_ms}ms)"


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
        ClientLeaseGrant,
        ClientLeasePut,
        KeepAlive,
        StopKeepAlive,
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
        PromoteLearner,
        RemoveMember,
        RemoveLeader,
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
    """``{"type": "Crash", "node": 2}``; frozensets as sorted lists (`tui.session.plain`).

    Raises:
        TypeError: not one of `ACTIONS`.
    """
    kind = type(action).__name__
    if ACTIONS.get(kind) is not type(action):
        raise TypeError(f"not an action: {action!r}")
    fields: dict[str, Any] = to_plain(action)
    return {"type": kind, **fields}


def from_json(data: dict[str, Any]) -> Action:
    """The action `to_json` wrote (each field read back as its dataclass field's type).

    Raises:
        ValueError: an unknown type, or unknown, missing or ill-typed fields.
    """
    fields = dict(data)
    kind = fields.pop("type", None)
    cls = ACTIONS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown action {kind!r}")
    return from_fields(cls, fields)
