"""Faults as data: what to do to the cluster, and when (a *scenario*).

A fault is a small frozen dataclass with an ``apply(cluster)`` and a one-line ``str``, so a
scenario can be written down, printed in a failure message, and replayed::

    Scenario.of(
        (500, Partition.of({1}, {2, 3})),
        (900, Heal()),
        (1200, CrashLeader()),
        (2000, RestartAll()),
    )
    # "at 500ms partition {1} | {2, 3}; at 900ms heal; at 1200ms crash the leader; ..."

Faults that name "the leader" resolve when they fire: a scenario does not need to know who
will lead. `random_scenario` draws a whole schedule from a seed, for the soak tests.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from kv.sim.config import UNRELIABLE, NetworkConfig
from kv.sim.faults.network import describe_groups

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster


class Fault(Protocol):
    """Something that can be done to a cluster at a point in virtual time."""

    def apply(self, cluster: Cluster) -> None: ...


@dataclass(frozen=True, slots=True)
class Partition:
    """Members in different groups cannot talk, either way (members in no group form one
    more group); every other link is healed."""

    groups: tuple[frozenset[int], ...]

    @classmethod
    def of(cls, *groups: Iterable[int]) -> Partition:
        return cls(tuple(frozenset(group) for group in groups))

    def apply(self, cluster: Cluster) -> None:
        cluster.partition(*self.groups)

    def __str__(self) -> str:
        return f"partition {describe_groups(self.groups)}"


@dataclass(frozen=True, slots=True)
class Cut:
    """One-way: messages from ``frm`` to ``to`` are lost (the other direction still works)."""

    frm: frozenset[int]
    to: frozenset[int]

    @classmethod
    def of(cls, frm: Iterable[int], to: Iterable[int]) -> Cut:
        return cls(frozenset(frm), frozenset(to))

    def apply(self, cluster: Cluster) -> None:
        cluster.cut(self.frm, self.to)

    def __str__(self) -> str:
        return f"cut {describe_groups([self.frm])} -/-> {describe_groups([self.to])}"


@dataclass(frozen=True, slots=True)
class Isolate:
    """Cut one member off from all others, both ways."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        cluster.isolate(self.node)

    def __str__(self) -> str:
        return f"isolate n{self.node}"


@dataclass(frozen=True, slots=True)
class IsolateLeader:
    """Cut off whoever leads when this fires (nothing if nobody does)."""

    def apply(self, cluster: Cluster) -> None:
        leader = cluster.leader()
        if leader is not None:
            cluster.isolate(leader)

    def __str__(self) -> str:
        return "isolate the leader"


@dataclass(frozen=True, slots=True)
class DeafLeader:
    """Whoever leads when this fires can still send but no longer hears anyone (a one-way
    partition: its heartbeats keep the followers quiet while their answers are lost)."""

    def apply(self, cluster: Cluster) -> None:
        leader = cluster.leader()
        if leader is not None:
            cluster.cut([i for i in cluster.ids if i != leader], [leader])

    def __str__(self) -> str:
        return "deafen the leader"


@dataclass(frozen=True, slots=True)
class Heal:
    """Restore every link."""

    def apply(self, cluster: Cluster) -> None:
        cluster.heal()

    def __str__(self) -> str:
        return "heal"


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """The link ``frm`` -> ``to`` loses ``loss`` of its messages and is ``delay_ms`` slower
    (until healed); the other links are as they were."""

    frm: int
    to: int
    loss: float
    delay_ms: int

    def apply(self, cluster: Cluster) -> None:
        cluster.set_link(self.frm, self.to, self.loss, self.delay_ms)

    def __str__(self) -> str:
        return f"make n{self.frm} -> n{self.to} lose {self.loss:.0%} and {self.delay_ms}ms slower"


@dataclass(frozen=True, slots=True)
class SetNetwork:
    """Change how the links behave: delays, loss, duplication."""

    config: NetworkConfig

    def apply(self, cluster: Cluster) -> None:
        cluster.set_network(self.config)

    def __str__(self) -> str:
        return f"network {self.config}"


@dataclass(frozen=True, slots=True)
class RestoreNetwork:
    """Back to the network the cluster was configured with (`kv.sim.SimConfig.network`)."""

    def apply(self, cluster: Cluster) -> None:
        cluster.set_network(cluster.config.network)

    def __str__(self) -> str:
        return "restore the network"


@dataclass(frozen=True, slots=True)
class Crash:
    """Crash one member (nothing if it is down already)."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        if cluster.nodes[self.node].up:
            cluster.crash(self.node)

    def __str__(self) -> str:
        return f"crash n{self.node}"


@dataclass(frozen=True, slots=True)
class CrashLeader:
    """Crash whoever leads when this fires (nothing if nobody does)."""

    def apply(self, cluster: Cluster) -> None:
        leader = cluster.leader()
        if leader is not None:
            cluster.crash(leader)

    def __str__(self) -> str:
        return "crash the leader"


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart one member from its disk (nothing if it is running or was removed)."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        if not cluster.nodes[self.node].up and not cluster.membership.was_removed(self.node):
            cluster.restart(self.node)

    def __str__(self) -> str:
        return f"restart n{self.node}"


@dataclass(frozen=True, slots=True)
class RestartAll:
    """Restart every member that is down (not those removed from the cluster)."""

    def apply(self, cluster: Cluster) -> None:
        for node_id, node in sorted(cluster.nodes.items()):
            if not node.up and not cluster.membership.was_removed(node_id):
                cluster.restart(node_id)

    def __str__(self) -> str:
        return "restart all"


@dataclass(frozen=True, slots=True)
class Amnesia:
    """Restart one member (crashing it first if it runs) from an EMPTY disk: it forgets its
    term, vote and log. Raft does not survive this (Figure 2's state is "persistent" for a
    reason): it may vote twice in one term, and the safety monitor may fire."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        if cluster.nodes[self.node].up:
            cluster.crash(self.node)
        cluster.restart(self.node, wipe_disk=True)

    def __str__(self) -> str:
        return f"restart n{self.node} with its disk wiped (amnesia)"


@dataclass(frozen=True, slots=True)
class TransferLeader:
    """Ask whoever leads to hand leadership to ``node`` (thesis §3.10; etcd's
    ``move-leader``). Not a fault, but a disturbance: proposals are refused meanwhile."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        cluster.transfer_leader(self.node)

    def __str__(self) -> str:
        return f"transfer leadership to n{self.node}"


@dataclass(frozen=True, slots=True)
class Timeout:
    """``node`` times out now and campaigns, whatever its election timer says (RaftScope's
    "time out"; `kv.sim.Control.campaign`)."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        cluster.control.campaign(self.node)

    def __str__(self) -> str:
        return f"time n{self.node} out: it campaigns"


@dataclass(frozen=True, slots=True)
class Scenario:
    """Faults at virtual times (ms from the start of the run)."""

    steps: tuple[tuple[int, Fault], ...] = field(default=())

    @classmethod
    def of(cls, *steps: tuple[int, Fault]) -> Scenario:
        return cls(tuple(sorted(steps, key=lambda step: step[0])))

    def __str__(self) -> str:
        if not self.steps:
            return "no faults"
        return "; ".join(f"at {time}ms {fault}" for time, fault in self.steps)

    def __len__(self) -> int:
        return len(self.steps)


def random_scenario(
    rng: random.Random,
    ids: Iterable[int],
    duration_ms: int,
    *,
    mean_hold_ms: int = 1_500,
    crashes: bool = True,
    partitions: bool = True,
    unreliable: bool = True,
    transfers: bool = True,
) -> Scenario:
    """A schedule of faults over ``duration_ms``, drawn from ``rng``, as Jepsen's nemeses
    run them: *episodes*. Each episode starts a fault, holds it for a while (a quarter to
    seven quarters of ``mean_hold_ms``: long enough for elections to happen on both sides of
    a partition), sometimes starts a second one on top, then repairs everything and leaves
    the cluster alone for a moment. At ``duration_ms`` everything is healed, restarted and
    reliable again.

    The faults: a random split; the leader isolated; the leader deaf (it can send but not
    hear); a one-way cut between two members; a bridge (two halves that cannot talk, and one
    member that talks to both -- Jepsen's); a member or the leader crashed; the network
    lossy, duplicating and reordering; a leadership transfer.
    """
    members = sorted(ids)
    kinds = (
        (["split", "isolate-leader", "deaf-leader", "cut", "bridge"] if partitions else [])
        + (["crash", "crash-leader"] if crashes else [])
        + (["unreliable"] if unreliable else [])
        + (["transfer"] if transfers else [])
    )
    steps: list[tuple[int, Fault]] = []
    time = rng.randint(0, mean_hold_ms // 2)
    while kinds and time < duration_ms:
        hold = rng.randint(mean_hold_ms // 4, mean_hold_ms * 7 // 4)
        end = min(time + hold, duration_ms)
        first = rng.choice(kinds)
        chosen = [first]
        if rng.random() < 0.3:
            chosen.append(rng.choice([kind for kind in kinds if kind != first] or kinds))
        for n, kind in enumerate(chosen):
            at = time if n == 0 else rng.randint(time, end)
            steps.extend((at, fault) for fault in _start_fault(kind, rng, members))
        steps += [(end, Heal()), (end, RestartAll()), (end, RestoreNetwork())]
        time = end + rng.randint(100, mean_hold_ms)
    steps += [(duration_ms, Heal()), (duration_ms, RestartAll()), (duration_ms, RestoreNetwork())]
    return Scenario.of(*steps)


def _start_fault(kind: str, rng: random.Random, members: list[int]) -> list[Fault]:
    """The fault(s) that start an episode of ``kind``."""
    if kind == "split":
        shuffled = rng.sample(members, len(members))
        split = rng.randint(1, len(members) - 1)
        return [Partition.of(shuffled[:split], shuffled[split:])]
    if kind == "isolate-leader":
        return [IsolateLeader()]
    if kind == "deaf-leader":
        return [DeafLeader()]
    if kind == "cut":
        a, b = rng.sample(members, 2)
        return [Cut.of([a], [b])]
    if kind == "bridge":
        shuffled = rng.sample(members, len(members))
        bridge, rest = shuffled[0], shuffled[1:]
        half = max(1, len(rest) // 2)
        left, right = rest[:half], rest[half:]
        del bridge  # talks to everyone: only the halves are cut apart
        return [Cut.of(left, right), Cut.of(right, left)]
    if kind == "crash":
        return [Crash(rng.choice(members))]
    if kind == "crash-leader":
        return [CrashLeader()]
    if kind == "unreliable":
        return [SetNetwork(UNRELIABLE)]
    if kind == "transfer":
        return [TransferLeader(rng.choice(members))]
    raise ValueError(f"unknown fault kind {kind!r}")
