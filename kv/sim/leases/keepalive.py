"""Clients' keep-alives in the simulator: leases kept alive through the leader (chapter 7).

A `Keeper` is one client's keep-alive stream for one lease (clientv3's lessor): every
``every_ms`` it sends a keep-alive to its endpoint, a member, over the client's link (which
never fails; a member that is down refuses it). The member answers it as the real server
does (`kv.server.requests.leases`):

* if it leads, its lessor renews the lease (`kv.lease.Lessor.renew`) and it answers the TTL,
  or 0 if there is no such lease; a lease past its deadline, its revoke on the way, is
  looked at again every tick until the revoke is applied (then 0);
* a follower forwards it to the leader it knows, over the simulated network: a partition
  between them loses the forward or its answer, and the follower tries again;
* with no leader known, or a leader whose lessor is not promoted yet, the member tries again
  every `RETRY_MS`, until the request timeout fails the keep-alive.

A keep-alive that fails makes the keeper move to its next endpoint; an answer of 0 stops it
(the lease is gone), and so does its ``until`` time. Every keep-alive is a `KeepAliveOp`,
for the lease safety check (`kv.sim.leases.safety`): no lease may be revoked within its TTL
of a keep-alive that renewed it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from kv.lease import LeaseExpiredError, LeaseNotFoundError, NotPrimaryError
from kv.raft import Role
from kv.sim.timeline.events import LeaseEvent
from kv.sim.timeline.tasks import TaskKind

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster

#: Pause between two attempts to reach the leader (etcd: 50 ms).
RETRY_MS = 50
#: What `_renew` says when the lease is past its deadline and its revoke is on the way.
_WAIT = -1


@dataclass(slots=True)
class KeepAliveOp:
    """One keep-alive of a `Keeper`, from call to answer."""

    lease: int
    call_time: int
    member: int
    return_time: int | None = None
    #: The TTL the leader answered (0: no such lease); None until answered, or if it failed.
    ttl: int | None = None
    error: str | None = None

    @property
    def renewed(self) -> bool:
        """Did the leader renew the lease (the client now counts on ``ttl`` more seconds)?"""
        return bool(self.ttl)

    def __str__(self) -> str:
        outcome = f"ttl {self.ttl}" if self.ttl is not None else (self.error or "in flight")
        return f"keep-alive of lease {self.lease} [{self.call_time}ms, n{self.member}]: {outcome}"


@dataclass(slots=True)
class Keeper:
    """One client keeping one lease alive (module docstring)."""

    lease: int
    endpoints: list[int]
    every_ms: int
    #: It sends no keep-alive at or after this time (ms).
    until: int
    endpoint: int = 0
    ops: list[KeepAliveOp] = field(default_factory=list)
    stopped: bool = False

    def stop(self) -> None:
        """Send no more keep-alives: the lease will lapse."""
        self.stopped = True


class KeepAlives:
    """Every keeper of a cluster, on its clock (module docstring)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.keepers: list[Keeper] = []
        self.rng = random.Random(f"{cluster.seed}/keepalives")

    @property
    def ops(self) -> list[KeepAliveOp]:
        """Every keep-alive sent, keeper by keeper."""
        return [op for keeper in self.keepers for op in keeper.ops]

    def keep(
        self,
        lease: int,
        endpoints: Iterable[int] | None = None,
        *,
        every_ms: int = 1_000,
        until: int | None = None,
    ) -> Keeper:
        """Keep ``lease`` alive through ``endpoints`` (default: every member), a keep-alive
        every ``every_ms`` (clientv3 sends one every TTL / 3), from now until ``until``."""
        chosen = list(endpoints) if endpoints is not None else list(self.cluster.ids)
        end = until if until is not None else 2**62
        keeper = Keeper(lease, chosen, every_ms, end, self.rng.randrange(len(chosen)))
        self.keepers.append(keeper)
        self._send(keeper, self.cluster)
        return keeper

    def _send(self, keeper: Keeper, cluster: Cluster) -> None:
        if keeper.stopped or cluster.now >= keeper.until:
            keeper.stopped = True
            return
        op = KeepAliveOp(keeper.lease, cluster.now, keeper.endpoints[keeper.endpoint])
        keeper.ops.append(op)
        self._later(self._client_delay(), self._at_endpoint, keeper, op)

    def _at_endpoint(self, keeper: Keeper, op: KeepAliveOp, cluster: Cluster) -> None:
        """The keep-alive is at its member (again): serve it, forward it, or wait."""
        if cluster.now >= op.call_time + cluster.config.request_timeout_ms:
            self._answer(keeper, op, None, "timed out")
            return
        node = cluster.nodes[op.member]
        if not node.up:
            self._answer(keeper, op, None, "connection refused")
        elif node.role is Role.LEADER:
            self._at_leader(keeper, op, op.member, cluster)
        elif node.lead and cluster.network.connected(op.member, node.lead):
            self._later(self._network_delay(), self._at_leader, keeper, op, node.lead)
        else:
            self._later(RETRY_MS, self._at_endpoint, keeper, op)

    def _at_leader(self, keeper: Keeper, op: KeepAliveOp, leader: int, cluster: Cluster) -> None:
        """The keep-alive reached the member its endpoint believes leads."""
        node = cluster.nodes[leader]
        forwarded = leader != op.member
        if not node.up or (forwarded and not cluster.network.connected(op.member, leader)):
            self._later(RETRY_MS, self._at_endpoint, keeper, op)  # the forward was lost
            return
        ttl = self._renew(leader, op.lease)
        if ttl is None:  # not the leader (any more), or not promoted yet
            self._later(RETRY_MS, self._at_endpoint, keeper, op)
        elif ttl == _WAIT:
            self._later(cluster.config.tick_ms, self._at_leader, keeper, op, leader)
        elif forwarded:
            self._later(self._network_delay(), self._back_from, keeper, op, leader, ttl)
        else:
            self._answer(keeper, op, ttl, None)

    def _back_from(
        self, keeper: Keeper, op: KeepAliveOp, leader: int, ttl: int, cluster: Cluster
    ) -> None:
        """The leader's answer reached the endpoint (unless the network lost it)."""
        if not cluster.network.connected(leader, op.member) or not cluster.nodes[op.member].up:
            self._later(RETRY_MS, self._at_endpoint, keeper, op)
            return
        self._answer(keeper, op, ttl, None)

    def _renew(self, leader: int, lease: int) -> int | None:
        node = self.cluster.nodes[leader]
        if node.role is not Role.LEADER:
            return None
        try:
            return node.lessor().renew(lease, self.cluster.seconds())
        except NotPrimaryError:
            return None
        except LeaseNotFoundError:
            return 0
        except LeaseExpiredError:
            return _WAIT

    def _answer(self, keeper: Keeper, op: KeepAliveOp, ttl: int | None, error: str | None) -> None:
        """The answer goes back to the client over its link."""
        self._later(self._client_delay(), self._answered, keeper, op, ttl, error)

    def _answered(
        self, keeper: Keeper, op: KeepAliveOp, ttl: int | None, error: str | None, cluster: Cluster
    ) -> None:
        op.return_time, op.ttl, op.error = cluster.now, ttl, error
        what = f"kept alive: ttl {ttl}" if ttl else ("gone" if ttl == 0 else f"keep-alive {error}")
        cluster.emit(LeaseEvent(op.member, op.lease, what))
        if op.renewed:
            cluster.lease_monitor.renewed(op.lease, op.call_time, op.ttl or 0)
        if ttl == 0:
            keeper.stop()  # the lease is gone: clientv3 closes the keep-alive channel
            return
        if error is not None:
            keeper.endpoint = (keeper.endpoint + 1) % len(keeper.endpoints)
        when = max(op.call_time + keeper.every_ms, cluster.now + cluster.config.retry_backoff_ms)
        cluster.at(when, partial(self._send, keeper), TaskKind.CLIENT)

    def _later(self, delay: int, step: Callable[..., None], *args: object) -> None:
        self.cluster.at(self.cluster.now + delay, partial(step, *args), TaskKind.CLIENT)

    def _client_delay(self) -> int:
        return self.rng.randint(*self.cluster.config.client_delay_ms)

    def _network_delay(self) -> int:
        return self.rng.randint(*self.cluster.network.config.delay_ms)
