"""A scenario about leases: a lease across a leader change (chapter 7; etcd bug #15247).

The leader holds the only deadline of lease 1 (a follower's lessor keeps none). It is cut
off just before that deadline, while the client keeps the lease alive through the other two
members. The old leader's clock says the lease is over -- but before it revokes it, it asks a
majority whether it still leads (a ReadIndex round), and nobody answers. The majority elects
a new leader, which extends every lease by an election timeout and renews lease 1 from then
on. When the partition heals, the old leader's round is answered through the new leader: it
no longer leads the term it decided in, so it drops the revoke (etcd before its fix proposed
it anyway, and the new leader committed it). Last, the client stops, and the new leader
revokes the lease once its TTL runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kv.raft import Role
from kv.sim import Cluster, LeaseEvent
from tui.session import actions
from tui.session.actions import Action
from tui.session.scenarios.steps import Leads, Memory, Scenario, Step, Take, always

#: The lease, its TTL (the shortest the default timing grants) and its key.
LEASE, TTL, KEY = 1, 2, "lock"
#: How long before the old leader's deadline it is cut off (ms).
CUT_BEFORE_MS = 300


def granted(cluster: Cluster, memory: Memory) -> bool:
    """The leader applied the grant: its lessor keeps the lease's deadline."""
    node = cluster.nodes[memory["old"]]
    return node.machine is not None and node.lessor().lookup(LEASE) is not None


def key_written(cluster: Cluster, memory: Memory) -> bool:
    return cluster.nodes[memory["old"]].get(KEY) is not None


def deadline_near(cluster: Cluster, memory: Memory) -> bool:
    """The old leader's deadline for the lease is `CUT_BEFORE_MS` away: remember the other
    members as ``a`` and ``b``."""
    node = cluster.nodes[memory["old"]]
    lease = node.lessor().lookup(LEASE) if node.machine is not None else None
    if lease is None or lease.expiry is None:
        return False
    if lease.expiry * 1000 - cluster.now > CUT_BEFORE_MS:
        return False
    memory["a"], memory["b"] = (n for n in cluster.ids if n != memory["old"])
    return True


def cut_off_and_keep_alive(cluster: Cluster, memory: Memory) -> Sequence[Action]:
    old, others = memory["old"], (memory["a"], memory["b"])
    return [actions.Partition.of([old], others), actions.KeepAlive(LEASE, others)]


@dataclass(frozen=True, slots=True)
class Said:
    """Member ``key`` said something about the lease that starts with ``text``."""

    key: str
    text: str

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        node = memory[self.key]
        return any(
            isinstance(t.event, LeaseEvent)
            and t.event.node == node
            and t.event.what.startswith(self.text)
            for t in cluster.events
        )


def new_leader_keeps_it(cluster: Cluster, memory: Memory) -> bool:
    """A new leader's lessor is promoted and keeps the lease: remember it as ``new``."""
    for node_id in (memory["a"], memory["b"]):
        node = cluster.nodes[node_id]
        if node.role is Role.LEADER and node.machine is not None and node.lessor().is_primary:
            memory["new"], memory["new_term"] = node_id, node.term
            return True
    return False


def old_stepped_down(cluster: Cluster, memory: Memory) -> bool:
    return cluster.nodes[memory["old"]].role is not Role.LEADER


def lapsed(cluster: Cluster, memory: Memory) -> bool:
    """The lease is revoked: its key is gone from every member."""
    return all(cluster.nodes[n].get(KEY) is None for n in cluster.ids)


LEASE_ACROSS_A_LEADER_CHANGE = Scenario(
    "0",
    "Lease across a leader change: a deposed leader does not revoke it (etcd #15247)",
    (
        Step(
            f"n{{old}} leads term {{old_term}}; a client asks for lease {LEASE} (TTL {TTL} s)",
            Leads("old"),
            Take((actions.ClientLeaseGrant(LEASE, TTL),)),
        ),
        Step(
            f"granted: n{{old}}, the leader, alone keeps its deadline; put {KEY} with it",
            granted,
            Take((actions.ClientLeasePut(KEY, "held", LEASE),)),
            pause=False,
        ),
        Step(f"{KEY} lives as long as lease {LEASE}", key_written, pause=False),
        Step(
            f"lease {LEASE} ends on n{{old}}'s clock in {CUT_BEFORE_MS} ms: cut n{{old}} off; "
            "the client keeps the lease alive through n{a} and n{b}",
            deadline_near,
            cut_off_and_keep_alive,
        ),
        Step(
            "n{old}'s clock says the lease is over: before revoking it, it asks a majority "
            "whether it still leads (ReadIndex); nobody answers",
            Said("old", "expired: confirming"),
        ),
        Step(
            "n{new} won term {new_term}: it extended every lease by an election timeout and "
            "renews this one",
            new_leader_keeps_it,
        ),
        Step("n{old} heard from no majority: it stepped down (CheckQuorum)", old_stepped_down),
        Step(
            "heal: n{old}'s round is answered, through n{new}",
            always,
            Take((actions.Heal(),)),
            pause=False,
        ),
        Step(
            "n{old} no longer leads term {old_term}: it drops the revoke (etcd before its fix "
            f"proposed it, and n{{new}} committed it: {KEY} gone while kept alive)",
            Said("old", "not revoked"),
        ),
        Step(
            "the client stops keeping the lease alive",
            always,
            Take((actions.StopKeepAlive(LEASE),)),
            pause=False,
        ),
        Step(f"its TTL ran out on n{{new}}: lease {LEASE} revoked, {KEY} gone everywhere", lapsed),
    ),
)
