"""The leader's expiry duty: which expired leases to revoke, and when it may propose the
revoke (chapter 7). Pure: the caller runs the ReadIndex rounds and the proposals, on its own
clock -- the real server with asyncio (`kv.server.replica.expiry`), the simulator on its
virtual one (`kv.sim.leases`). Both follow the same steps through this one class.

Theory of operation
-------------------
No member deletes a lease's keys on its own clock (`kv.lease.lessor` says why). Every
`CHECK_SECONDS` the leader asks its lessor which leases are past their deadline
(`kv.lease.Lessor.expired`, at most 500 a pass) and starts a `Revoke` for each, at most
`MAX_PENDING_REVOKES` at a time; the others wait their turn (etcd: ``revokeExpiredLeases``
and the ``expiredLeaseC`` loop of ``etcdserver/server.go``). Keys therefore go between TTL
and about TTL + 0.5 s after the last renewal, plus the time to commit the revoke.

A revoke goes in two steps:

1. **Confirm leadership.** The leader runs a ReadIndex round (Raft thesis §6.4: a heartbeat
   acknowledged by a majority) and, once it is answered, asks `Expiry.confirmed` whether it
   still leads *in the term it decided in*. A leader cut off from the others does not know it
   was deposed, and its clock may run on past the deadline while the new leader has extended
   the lease. Its revoke, proposed as it steps down, would be forwarded to the new leader and
   committed: the keys of a lease a client is keeping alive would go (etcd bug #15247; fixed
   by the same check, ``ensureLeadership``).
2. **Propose** a ``LeaseRevokeRequest`` through the log, and `Expiry.finished` when it is
   applied, refused, or given up on; the next waiting revoke may then start.

A revoke that fails (the leader changed, the proposal timed out) is not retried here: the
lessor hands the lease out again after its retry interval, and a later pass starts again.

Table of the steps (who calls what):

==========================  =====================================  =========================
call                        when                                   returns
==========================  =====================================  =========================
`Expiry.due`                on the leader's clock (the simulator)  is a pass due now?
`Expiry.check`              a pass, on the leader                  the revokes to start now
`Expiry.confirmed`          the revoke's ReadIndex round answered  propose it?
`Expiry.finished`           proposed and done, or abandoned        the next revokes to start
==========================  =====================================  =========================
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kv.lease.lessor import Lessor

#: How often the leader looks for expired leases (etcd: 500 ms).
CHECK_SECONDS = 0.5
#: Revokes under way at once, at most (etcd: ``maxPendingRevokes``).
MAX_PENDING_REVOKES = 16


@dataclass(frozen=True, slots=True)
class Revoke:
    """The leader decided, in ``term``, that lease ``lease_id`` is over."""

    lease_id: int
    term: int


class Expiry:
    """One leader's revokes: waiting for a slot, and under way (module docstring)."""

    def __init__(self, limit: int = MAX_PENDING_REVOKES) -> None:
        self.limit = limit
        self._waiting: deque[Revoke] = deque()
        self._running = 0
        self._last_check: float | None = None

    @property
    def running(self) -> int:
        """Revokes started and not finished."""
        return self._running

    def due(self, now: float) -> bool:
        """Is a pass due at ``now`` (`CHECK_SECONDS` after the last, or the first)? A caller
        that sleeps between passes (the server) does not need to ask."""
        if self._last_check is not None and now - self._last_check < CHECK_SECONDS:
            return False
        self._last_check = now
        return True

    def check(self, lessor: Lessor, term: int, now: float) -> list[Revoke]:
        """A pass on the leader of ``term``: queue the leases past their deadline at ``now``,
        and return the revokes that may start (confirm leadership) now."""
        self._waiting.extend(Revoke(lease_id, term) for lease_id in lessor.expired(now))
        return self._admit()

    def confirmed(self, revoke: Revoke, leading_term: int | None) -> bool:
        """The ReadIndex round of ``revoke`` was answered: may the leader propose it?

        ``leading_term`` is the term this member leads in now (None: it does not lead).
        Only a leader still in the term it decided in may; otherwise the caller drops the
        revoke and calls `finished`.
        """
        return leading_term == revoke.term

    def finished(self, revoke: Revoke) -> list[Revoke]:
        """``revoke`` is over (applied, refused, abandoned): the revokes that start now."""
        self._running -= 1
        return self._admit()

    def _admit(self) -> list[Revoke]:
        admitted = []
        while self._waiting and self._running < self.limit:
            admitted.append(self._waiting.popleft())
            self._running += 1
        return admitted
