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
from kv.sim.network import describe_groups

if TYPE_CHECKING:
    from kv.sim.cluster import Cluster


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
class Heal:
    """Restore every link."""

    def apply(self, cluster: Cluster) -> None:
        cluster.heal()

    def __str__(self) -> str:
        return "heal"


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
    """Restart one member from its disk (nothing if it is running)."""

    node: int

    def apply(self, cluster: Cluster) -> None:
        if not cluster.nodes[self.node].up:
            cluster.restart(self.node)

    def __str__(self) -> str:
        return f"restart n{self.node}"


@dataclass(frozen=True, slots=True)
class RestartAll:
    """Restart every member that is down."""

    def apply(self, cluster: Cluster) -> None:
        for node_id, node in sorted(cluster.nodes.items()):
            if not node.up:
                cluster.restart(node_id)

    def __str__(self) -> str:
        return "restart all"


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
    mean_gap_ms: int = 700,
    crashes: bool = True,
    partitions: bool = True,
    unreliable: bool = True,
    transfers: bool = True,
) -> Scenario:
    """A schedule of faults over ``duration_ms``, drawn from ``rng``; everything is healed,
    restarted and reliable again at ``duration_ms``.

    At most a minority is down at any time (so the cluster can make progress whenever the
    network lets it), but partitions may leave no side with a majority.
    """
    members = sorted(ids)
    minority = (len(members) - 1) // 2
    down: set[int] = set()
    steps: list[tuple[int, Fault]] = []
    kinds = (
        (["partition", "isolate-leader", "cut", "heal", "heal"] if partitions else [])
        + (["crash", "crash-leader", "restart"] if crashes else [])
        + (["unreliable", "reliable"] if unreliable else [])
        + (["transfer"] if transfers else [])
    )
    time = 0
    while kinds:
        time += rng.randint(mean_gap_ms // 4, mean_gap_ms * 7 // 4)
        if time >= duration_ms:
            break
        kind = rng.choice(kinds)
        fault: Fault
        if kind == "partition":
            shuffled = rng.sample(members, len(members))
            split = rng.randint(1, len(members) - 1)
            fault = Partition.of(shuffled[:split], shuffled[split:])
        elif kind == "isolate-leader":
            fault = IsolateLeader()
        elif kind == "cut":
            a, b = rng.sample(members, 2)
            fault = Cut.of([a], [b])
        elif kind == "heal":
            fault = Heal()
        elif kind in ("crash", "crash-leader"):
            if len(down) >= minority:
                continue
            if kind == "crash-leader":
                fault = CrashLeader()  # whoever it is: count it as one more down
                down.add(-len(steps))  # a placeholder: the leader is not known yet
            else:
                victim = rng.choice([m for m in members if m not in down])
                down.add(victim)
                fault = Crash(victim)
        elif kind == "restart":
            if not down:
                continue
            fault = RestartAll()
            down.clear()
        elif kind == "transfer":
            fault = TransferLeader(rng.choice(members))
        elif kind == "unreliable":
            fault = SetNetwork(UNRELIABLE)
        else:
            fault = RestoreNetwork()
        steps.append((time, fault))
    steps += [(duration_ms, Heal()), (duration_ms, RestartAll()), (duration_ms, RestoreNetwork())]
    return Scenario(tuple(steps))
