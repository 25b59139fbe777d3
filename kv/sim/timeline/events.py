"""The simulator's own events, and the timestamped stream that carries them with the core's.

The Raft core tells what happens inside a node (`kv.raft.events`: "n2 became leader at term
3"). The simulator adds what happens around the nodes -- crashes, restarts, partitions,
clients' requests -- and stamps everything with the virtual time it happened at. One list,
`kv.sim.Cluster.events`, is then the whole story of a run, in order::

      1234ms  n2 became leader at term 2
      1502ms  network: {1} | {2, 3}
      1502ms  n2 crashed (lost 2 unpersisted entries)

Two runs with the same seed and scenario produce the same list, line for line; that is what
the determinism test compares.
"""

from __future__ import annotations

from dataclasses import dataclass

from kv.raft import events as ev
from kv.raft.events import name


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something the simulator did (not the core): its subclasses say what."""


@dataclass(frozen=True, slots=True)
class NodeCrashed(SimEvent):
    """``node`` stopped; what it had not persisted yet is gone.

    A crash in the middle of a write may leave a prefix of it on disk (a *torn* write):
    ``torn_entries`` of its entries made it, and the hard state written after them only if
    all of them did.
    """

    node: int
    lost_entries: int
    lost_hard_state: bool
    torn_entries: int = 0

    def __str__(self) -> str:
        lost = []
        if self.lost_entries:
            lost.append(f"{self.lost_entries} unpersisted entries")
        if self.lost_hard_state:
            lost.append("an unsaved hard state")
        what = f" (lost {' and '.join(lost)})" if lost else ""
        torn = f" mid-write, {self.torn_entries} entries of it on disk" if self.torn_entries else ""
        return f"{name(self.node)} crashed{torn}{what}"


@dataclass(frozen=True, slots=True)
class NodeRestarted(SimEvent):
    """``node`` started again from what it had persisted."""

    node: int
    term: int
    last_index: int
    commit: int

    def __str__(self) -> str:
        return (
            f"{name(self.node)} restarted from its disk: term {self.term}, "
            f"log to {self.last_index}, commit {self.commit}"
        )


@dataclass(frozen=True, slots=True)
class NodeJoined(SimEvent):
    """``node`` started for the first time, with an empty log, to join a running cluster."""

    node: int

    def __str__(self) -> str:
        return f"{name(self.node)} started with an empty log to join the cluster"


@dataclass(frozen=True, slots=True)
class NodeLeft(SimEvent):
    """``node`` applied its own removal from the cluster and shut down for good."""

    node: int
    last_index: int

    def __str__(self) -> str:
        return f"{name(self.node)} applied its own removal and shut down (log to {self.last_index})"


@dataclass(frozen=True, slots=True)
class MembershipChanged(SimEvent):
    """The operator's side of a membership change (`kv.sim.membership`): asked, answered,
    asked again, skipped."""

    description: str

    def __str__(self) -> str:
        return f"membership: {self.description}"


@dataclass(frozen=True, slots=True)
class NetworkChanged(SimEvent):
    """The links between the members changed (a partition, a heal) or their quality did."""

    description: str

    def __str__(self) -> str:
        return f"network: {self.description}"


@dataclass(frozen=True, slots=True)
class ClientEvent(SimEvent):
    """A client's request: sent, answered, refused, or given up on."""

    client: int
    node: int
    what: str  # "sent", "answered", "refused", "timed out"
    request: str  # e.g. "put('k1', 'c1-3')" or "put('k1', 'c1-3') -> ok @7"

    def __str__(self) -> str:
        return f"client c{self.client} {self.what} {self.request} ({name(self.node)})"


@dataclass(frozen=True, slots=True)
class LeaseEvent(SimEvent):
    """A lease's life on the leader's clock (chapter 7): expired, its revoke confirmed or
    dropped, proposed; a client's keep-alive answered (`kv.sim.leases.expiry`,
    `kv.sim.leases.keepalive`)."""

    node: int
    lease: int
    what: str  # e.g. "expired: confirming leadership in term 3"

    def __str__(self) -> str:
        return f"{name(self.node)}: lease {self.lease} {self.what}"


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """An event and the virtual time (ms) it happened at."""

    time: int
    event: ev.Event | SimEvent

    def __str__(self) -> str:
        return f"{self.time:>8}ms  {self.event}"
