"""`FaultInjection`: the cluster's hands for breaking it -- the network, crashes, restarts.

These are the primitives every fault is made of: the faults as data of
`kv.sim.faults.scenario` (`Partition`, `Crash`, `Amnesia`, ...) call them when their time
comes, and a test or the TUI calls them directly (``cluster.partition([1], [2, 3])``). Each
says what it did on the event stream (`kv.sim.NetworkChanged`, ``NodeCrashed``,
``NodeRestarted``).

`kv.sim.Cluster` inherits them: they act on its network, members and clock, and
draw what is random (a torn write's cut) from its timing source, so a run stays a function
of its seed. Moved out of `kv.sim.timeline.cluster` (chapter 3).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from kv.raft import MemoryStorage
from kv.sim.config import NetworkConfig, SimConfig
from kv.sim.faults.network import Network
from kv.sim.timeline.events import NetworkChanged, SimEvent

if TYPE_CHECKING:
    from kv.sim.membership.operator import Membership
    from kv.sim.node import SimNode


class Breakable(Protocol):
    """What the primitives reach in `kv.sim.Cluster`, which inherits them."""

    config: SimConfig
    network: Network
    nodes: dict[int, SimNode]
    genesis: tuple[int, ...]
    membership: Membership
    _timing_rng: random.Random

    def emit(self, event: SimEvent) -> None: ...
    def leader(self) -> int | None: ...
    def poke(self, node: SimNode) -> None: ...
    def partition(self, *groups: Iterable[int]) -> None: ...
    def _start(self, node_id: int) -> None: ...


class FaultInjection:
    """The fault primitives of `kv.sim.Cluster` (module docstring)."""

    def partition(self: Breakable, *groups: Iterable[int]) -> None:
        """Members in different groups cannot talk (members in no group form one more)."""
        self.emit(NetworkChanged(self.network.partition(*groups)))

    def cut(self: Breakable, frm: Iterable[int], to: Iterable[int]) -> None:
        """Messages from ``frm`` to ``to`` are lost; the other way still works."""
        self.emit(NetworkChanged(self.network.cut(frm, to)))

    def isolate(self: Breakable, node_id: int) -> None:
        """Cut one member off from the others, both ways."""
        self.partition([node_id])

    def heal(self: Breakable) -> None:
        """Restore every link."""
        self.network.heal()
        self.emit(NetworkChanged("healed"))

    def set_link(self: Breakable, frm: int, to: int, loss: float, delay_ms: int) -> None:
        """Messages from ``frm`` to ``to`` are lost with probability ``loss`` and take
        ``delay_ms`` more (until `heal`)."""
        self.emit(NetworkChanged(self.network.set_link(frm, to, loss, delay_ms)))

    def set_network(self: Breakable, config: NetworkConfig) -> None:
        """Change delays, loss and duplication from now on."""
        self.network.config = config
        self.emit(NetworkChanged(str(config)))

    def crash(self: Breakable, node_id: int) -> None:
        """Stop a member: it loses everything it had not persisted (a write in progress may
        leave a prefix on disk: `SimConfig.torn_writes`)."""
        torn = self._timing_rng if self.config.torn_writes else None
        self.emit(self.nodes[node_id].crash(torn))

    def restart(self: Breakable, node_id: int, *, wipe_disk: bool = False) -> None:
        """Start a crashed member again from what it persisted (never a removed one).

        ``wipe_disk``: from an empty disk instead -- *amnesia*, a fault Raft does not
        survive: the member forgets its term and vote and may vote twice in one term, so two
        leaders can be elected in it (the TUI uses it to show the safety monitor firing).
        """
        if self.membership.was_removed(node_id):
            raise ValueError(f"n{node_id} was removed from the cluster: it does not come back")
        if wipe_disk:
            self.nodes[node_id].storage = MemoryStorage.with_members(self.genesis)
        self._start(node_id)

    def transfer_leader(self: Breakable, node_id: int) -> None:
        """Ask the current leader (if any) to hand leadership to ``node_id``."""
        leader = self.leader()
        if leader is None:
            return
        node = self.nodes[leader]
        if node.raw is not None:
            node.raw.transfer_leader(node_id)
            self.poke(node)
