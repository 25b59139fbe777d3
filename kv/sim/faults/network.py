"""The simulated network between the members: delays, losses, duplicates and partitions.

A message handed to the network gets zero, one or two delivery times (lost, delivered,
duplicated), each ``now + delay`` with the delay drawn from the network's own seeded random
source. Messages therefore overtake each other whenever their delays allow: reordering needs
no rule of its own. The cluster puts the deliveries on its timeline
(`kv.sim.Cluster`), and asks `Network.connected` again when one falls due, so a
partition that starts while a message is in flight cuts it off too.

Partitions are a set of cut directed links. `Network.partition` cuts every link between
groups both ways; `Network.cut` cuts one direction, for the asymmetric failures (a node that
can send but not receive) that break naive leader election.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable

from kv.raft import Message, MessageType
from kv.sim.config import NetworkConfig


def describe_groups(groups: Iterable[Iterable[int]]) -> str:
    """``{1} | {2, 3}``."""
    return " | ".join(
        "{" + ", ".join(str(node) for node in sorted(group)) + "}" for group in groups
    )


class Network:
    """The links between members ``ids``, their quality, and counts of what crossed them."""

    def __init__(self, ids: Iterable[int], config: NetworkConfig, rng: random.Random) -> None:
        self.ids = sorted(ids)
        self.config = config
        self.rng = rng
        #: Directed links (from, to) that deliver nothing.
        self.cut_links: set[tuple[int, int]] = set()
        #: Per directed link (from, to): (loss probability, extra delay in ms), until `heal`.
        self.link_faults: dict[tuple[int, int], tuple[float, int]] = {}
        #: A test's own filter: messages it returns True for are lost when sent (it must be
        #: deterministic, like everything else).
        self.drop_if: Callable[[Message], bool] | None = None
        #: Messages handed to the network, by type (a duplicate is counted once, here).
        self.sent: Counter[MessageType] = Counter()
        #: Messages stepped into their recipient, by type (duplicates count twice).
        self.delivered: Counter[MessageType] = Counter()
        #: Messages lost: dropped at random, or on a cut link, or at a crashed member.
        self.dropped: Counter[MessageType] = Counter()
        #: Messages the network delivered twice.
        self.duplicated: Counter[MessageType] = Counter()

    def add(self, node: int) -> None:
        """A new member joins: linked to every other, both ways."""
        if node not in self.ids:
            self.ids = sorted([*self.ids, node])

    # -- the links --------------------------------------------------------------------------

    def connected(self, frm: int, to: int) -> bool:
        """Does the link from ``frm`` to ``to`` carry messages now?"""
        return (frm, to) not in self.cut_links

    def partition(self, *groups: Iterable[int]) -> str:
        """Cut every link between different groups, both ways; heal the rest.

        Members in no group form one more group together. Returns a description.
        """
        sets = [frozenset(group) for group in groups]
        rest = frozenset(self.ids).difference(*sets)
        if rest:
            sets.append(rest)
        side = {node: i for i, group in enumerate(sets) for node in group}
        self.cut_links = {
            (a, b) for a in self.ids for b in self.ids if a != b and side.get(a) != side.get(b)
        }
        return describe_groups(sets)

    def cut(self, frm: Iterable[int], to: Iterable[int]) -> str:
        """Cut the links from every member of ``frm`` to every member of ``to`` (one way)."""
        sources, targets = sorted(frm), sorted(to)
        self.cut_links |= {(a, b) for a in sources for b in targets if a != b}
        return f"{describe_groups([sources])} -/-> {describe_groups([targets])}"

    def set_link(self, frm: int, to: int, loss: float, delay_ms: int) -> str:
        """One link's own faults: lose a share ``loss`` of what it carries, and add
        ``delay_ms`` to every delay (``0, 0`` clears them). Returns a description."""
        if not 0.0 <= loss <= 1.0 or delay_ms < 0:
            raise ValueError(f"need 0 <= loss <= 1 and delay_ms >= 0: {loss}, {delay_ms}")
        if loss or delay_ms:
            self.link_faults[(frm, to)] = (loss, delay_ms)
        else:
            self.link_faults.pop((frm, to), None)
        return f"n{frm} -> n{to} loses {loss:.0%}, {delay_ms}ms slower"

    def heal(self) -> None:
        """Restore every link, and clear the links' own faults (the quality of the network
        as a whole stays as it is)."""
        self.cut_links.clear()
        self.link_faults.clear()

    # -- sending ----------------------------------------------------------------------------

    def route(self, message: Message, now: int) -> list[int]:
        """When ``message`` arrives: no time (lost), one, or two (duplicated)."""
        config = self.config
        self.sent[message.type] += 1
        if (
            not self.connected(message.from_, message.to)
            or (self.drop_if is not None and self.drop_if(message))
            or self.rng.random() < config.drop_rate
        ):
            self.dropped[message.type] += 1
            return []
        # Draws for a link's own faults only when it has some: runs without them replay as
        # they always did.
        loss, extra = self.link_faults.get((message.from_, message.to), (0.0, 0))
        if loss and self.rng.random() < loss:
            self.dropped[message.type] += 1
            return []
        copies = 1
        if (message.type is not MessageType.PROP or config.duplicate_proposals) and (
            self.rng.random() < config.duplicate_rate
        ):
            self.duplicated[message.type] += 1
            copies = 2
        low, high = config.delay_ms
        return [now + extra + self.rng.randint(low, high) for _ in range(copies)]

    def total_sent(self, *types: MessageType) -> int:
        """Messages sent so far, of these types (all types if none are named)."""
        if not types:
            return sum(self.sent.values())
        return sum(self.sent[t] for t in types)
