"""The event log in words, and the marks on the timeline scrubber.

The sentences are the events' own ``str`` -- the core's (`kv.raft.events`: "n2 became leader
at term 3") and the simulator's (`kv.sim.timeline.events`: "n3 crashed", "network: {1} | {2, 3}"),
the very lines the tests and the chapters print -- plus one per action a person took
(`tui.session.actions.ActionTaken`: "you: crash n2"). Nothing here invents a second wording.

A `Mark` is an event worth a tick on the scrubber: elections, leaders, crashes, restarts,
partitions and heals, membership changes, actions, a safety violation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from kv.raft import Message, MessageType
from kv.raft import events as ev
from kv.raft.events import name
from kv.sim import NetworkChanged, NodeCrashed, NodeJoined, NodeLeft, NodeRestarted, TimedEvent
from tui.session.actions import ActionTaken


class Source(enum.Enum):
    """Who a line of the log comes from."""

    RAFT = "raft"  # a node's core (`kv.raft.events`)
    SIM = "sim"  # the simulator: crashes, the network, clients, the operator
    ACTION = "action"  # a person (or a scenario)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the event log: ``index`` counts the cluster's events from 0."""

    index: int
    time_ms: int
    text: str
    source: Source

    def __str__(self) -> str:
        return f"{self.time_ms / 1000:8.3f} {self.text}"


def lines(events: list[TimedEvent], since: int = 0) -> list[Line]:
    """The events from index ``since`` on, as lines."""
    return [
        Line(index, timed.time, str(timed.event), _source(timed))
        for index, timed in enumerate(events[since:], start=since)
    ]


def _source(timed: TimedEvent) -> Source:
    if isinstance(timed.event, ActionTaken):
        return Source.ACTION
    if isinstance(timed.event, ev.Event):
        return Source.RAFT
    return Source.SIM


class MarkKind(enum.Enum):
    ELECTION = "election"
    LEADER = "leader"
    CRASH = "crash"
    RESTART = "restart"
    PARTITION = "partition"
    HEAL = "heal"
    MEMBERSHIP = "membership"
    ACTION = "action"
    VIOLATION = "violation"


@dataclass(frozen=True, slots=True)
class Mark:
    """A tick on the scrubber: what happened at ``position`` (at ``time_ms``)."""

    position: int
    time_ms: int
    kind: MarkKind
    label: str


def marks(position: int, events: Iterable[TimedEvent], elections: set[int]) -> list[Mark]:
    """The marks among ``events`` (those one timeline entry produced, at ``position``).

    ``elections``: the terms that already have an election mark (a term's first candidate
    marks it; the others would only clutter the scrubber), updated here.
    """
    found = []
    for timed in events:
        kind = _mark_kind(timed, elections)
        if kind is not None:
            found.append(Mark(position, timed.time, kind, str(timed.event)))
    return found


def _mark_kind(timed: TimedEvent, elections: set[int]) -> MarkKind | None:
    event = timed.event
    if isinstance(event, ev.BecameCandidate):
        if event.term in elections:
            return None
        elections.add(event.term)
        return MarkKind.ELECTION
    simple: dict[type, MarkKind] = {
        ev.BecameLeader: MarkKind.LEADER,
        NodeCrashed: MarkKind.CRASH,
        NodeRestarted: MarkKind.RESTART,
        NodeJoined: MarkKind.MEMBERSHIP,
        NodeLeft: MarkKind.MEMBERSHIP,
        ev.ConfChangeApplied: MarkKind.MEMBERSHIP,
        ActionTaken: MarkKind.ACTION,
    }
    if isinstance(event, NetworkChanged):
        return MarkKind.HEAL if event.description == "healed" else MarkKind.PARTITION
    return simple.get(type(event))


def describe_message(message: Message) -> str:
    """A message in a few words, for the wire and the next-event table: ``append t3
    [11..13] commit 10``, ``vote t3 (last 12 t3)``, ``vote-resp t3 granted``..."""
    kind = message.type.name.lower().replace("_", "-")
    what = f"{kind} t{message.term}"
    t = MessageType
    if message.type is t.APP:
        if message.entries:
            first, last = message.entries[0].index, message.entries[-1].index
            span = f"[{first}]" if first == last else f"[{first}..{last}]"
        else:
            span = "(no entries)"
        return f"{what} {span} after {message.index} t{message.log_term}, commit {message.commit}"
    if message.type in (t.VOTE, t.PRE_VOTE):
        return f"{what} (last {message.index} t{message.log_term})"
    if message.type in (t.VOTE_RESP, t.PRE_VOTE_RESP):
        return f"{what} {'rejected' if message.reject else 'granted'}"
    if message.type is t.APP_RESP:
        answer = f"rejected, hint {message.reject_hint}" if message.reject else "ok"
        return f"{what} {answer} match {message.index}"
    if message.type is t.HEARTBEAT:
        return f"{what} commit {message.commit}"
    if message.type is t.SNAP and message.snapshot is not None:
        return f"{what} at {message.snapshot.metadata.index}"
    return what


def route(message: Message) -> str:
    """``n1 -> n3``."""
    return f"{name(message.from_)} -> {name(message.to)}"
