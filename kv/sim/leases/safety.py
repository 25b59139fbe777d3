"""The leases' safety and liveness, checked as the simulation runs (chapter 7).

A client that was told its lease lives on must be able to count on it. When a keep-alive sent
at time *c* comes back with a TTL, the client counts on the lease until *c* + TTL (it cannot
know when the leader renewed it, only that it was after *c*); a grant sent at *c* promises
the same. So:

* **No early revoke**: a revoke of an expired lease (`kv.sim.leases.expiry`) is decided no earlier
  than *c* + TTL for every keep-alive or grant of that lease that succeeded and was sent before
  the revoke was applied. A deposed leader that still believes it leads must not break this
  (etcd bug #15247: it revoked a lease the new leader was keeping alive); nor may a new
  leader that forgot to extend the leases it inherited (etcd's ``Promote``).
  `LeaseMonitor` raises `kv.sim.safety.SafetyViolation` the moment it breaks: when such a
  revoke is first applied by any member, or when such a keep-alive's answer arrives.
* **Expiry happens**: once a leader is stable, every lease that nobody keeps alive is revoked
  within its TTL + an election timeout + a check interval or so (`unexpired` lists those
  still held by the leader past that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kv.lease import CHECK_SECONDS
from kv.linearizability.leases import LeaseGrant, LeaseGrantResult
from kv.sim.safety import SafetyViolation

if TYPE_CHECKING:
    from kv.sim.clients.client import ClientOp
    from kv.sim.leases.expiry import ExpiryRevoke
    from kv.sim.timeline.cluster import Cluster


@dataclass(frozen=True, slots=True)
class Renewal:
    """A client was told, for a request sent at ``call_time``, that ``lease`` lives ``ttl``
    seconds more (a keep-alive's answer, or a grant's)."""

    lease: int
    call_time: int
    ttl: int

    @property
    def until(self) -> int:
        """Until when (ms) the client counts on the lease."""
        return self.call_time + self.ttl * 1000


class LeaseMonitor:
    """Checks that no lease is revoked early (module docstring), as the run goes."""

    def __init__(self, min_ttl: int) -> None:
        """A monitor for leases granted at least ``min_ttl`` seconds."""
        self.min_ttl = min_ttl
        self._renewals: dict[int, list[Renewal]] = {}
        self._revokes: dict[int, list[ExpiryRevoke]] = {}

    def renewed(self, lease: int, call_time: int, ttl: int) -> None:
        """A keep-alive or grant sent at ``call_time`` succeeded with ``ttl`` seconds."""
        renewal = Renewal(lease, call_time, ttl)
        self._renewals.setdefault(lease, []).append(renewal)
        for revoke in self._revokes.get(lease, []):
            _check(revoke, renewal)

    def answered(self, op: ClientOp) -> None:
        """A client's request was answered: a grant promises the TTL it was granted."""
        granted = isinstance(op.output, LeaseGrantResult) and op.output.granted
        if isinstance(op.input, LeaseGrant) and granted:
            self.renewed(op.input.id, op.call_time, max(op.input.ttl, self.min_ttl))

    def revoke_applied(self, revoke: ExpiryRevoke) -> None:
        """An expired lease's revoke was applied for the first time, by some member."""
        self._revokes.setdefault(revoke.lease, []).append(revoke)
        for renewal in self._renewals.get(revoke.lease, []):
            _check(revoke, renewal)


def _check(revoke: ExpiryRevoke, renewal: Renewal) -> None:
    applied = revoke.applied_at
    assert applied is not None
    if renewal.call_time < applied and revoke.proposed_at < renewal.until:
        raise SafetyViolation(
            f"lease {revoke.lease} revoked early: n{revoke.node} proposed its revoke at "
            f"{revoke.proposed_at}ms (term {revoke.term}, applied at {applied}ms), but a "
            f"request sent at {renewal.call_time}ms was told it lives {renewal.ttl}s more, "
            f"until {renewal.until}ms"
        )


def unexpired(cluster: Cluster, grace_ms: int | None = None) -> list[int]:
    """The leases the leader still holds more than ``grace_ms`` past their deadline (by
    default a check interval and a request timeout: time to find, confirm and commit the
    revoke). Empty with no leader, or a leader whose lessor is not promoted yet."""
    leader = cluster.leader()
    if leader is None:
        return []
    lessor = cluster.nodes[leader].lessor()
    if not lessor.is_primary:
        return []
    grace = grace_ms if grace_ms is not None else cluster.config.request_timeout_ms
    late = cluster.seconds() - CHECK_SECONDS - grace / 1000
    return sorted(lease.id for lease in lessor if lease.expiry is not None and lease.expiry < late)
