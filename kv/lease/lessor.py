"""The lessor: the leases of one member, and who may end them (chapter 7).

Theory of operation
-------------------
Every member has a lessor, and every member's lessor holds the same leases with the same keys:
a lease is granted, revoked and given keys only by applying log entries (``LeaseGrant``,
``LeaseRevoke``, a put with a lease), in log order, on every member (`grant`, `revoke`,
`set_key`). That part is an ordinary replicated state machine.

Time is the other part, and it belongs to the leader alone (etcd calls its lessor the
*primary*). Clocks on different machines disagree, and a key deleted on one member but not on
another would be a divergence Raft cannot repair. So no lessor deletes anything when a lease
runs out. The leader's lessor *notices* (`expired`), and the leader proposes a revoke through
the log; every member then deletes the keys when it applies that entry, at the same revision.
A follower's leases have no expiry at all.

Table of who does what (etcd: ``lease/lessor.go``):

=================  ==========================  ======================================
operation          runs on                     clock
=================  ==========================  ======================================
`grant`            every member (applied)      leader: expiry = now + TTL
`revoke`           every member (applied)      --
`set_key`          every member (applied)      --
`renew`            the leader only             expiry = now + TTL
`expired`          the leader only             deadline passed, or a retry is due
`promote`          a member that became leader expiry = now + extension + TTL (or
                                               the checkpointed remaining TTL)
`demote`           a member that stopped       every expiry: none ("forever")
`checkpoint`       every member (applied)      leader: schedules the next checkpoint
`due_checkpoints`  the leader only             the checkpoints to propose now
=================  ==========================  ======================================

Why `promote` *extends*: the new leader cannot know when the old leader last renewed a lease,
nor how long the election took. A client that renewed just before the old leader died must not
lose its keys because of the election, so every lease gets its full TTL again, plus an
election timeout (etcd's ``Promote(electionTimeout)``), counted from the moment the new leader
has applied its first entry (`kv.server.replica` calls `promote` then).

Why a revoke can be *retried*: a revoke proposal may be lost (the leader changes, the entry is
dropped). `expired` hands a lease out again if it is still there a retry interval later (etcd:
the request timeout, 5 s + 2 election timeouts), so the leader proposes again; a revoke
applied twice is harmless, the second finds no lease.

With checkpointing on (a `Checkpointing` passed in; `kv.lease.checkpoint` explains it), the
leader also schedules each long lease's next checkpoint when it grants, promotes or applies a
checkpoint, and `due_checkpoints` says which remaining TTLs to propose now.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from kv.lease.checkpoint import CHECKPOINT_BATCH, Checkpoint, Checkpointing
from kv.lease.errors import (
    LeaseExistsError,
    LeaseExpiredError,
    LeaseNotFoundError,
    LeaseTTLTooLargeError,
    NotPrimaryError,
)
from kv.lease.lease import MAX_TTL, NO_LEASE, Lease
from kv.lease.schedule import Schedule

#: The most leases one pass of `expired` hands out (etcd: ``leaseRevokeRate / 2``; the leader
#: checks every 500 ms, so at most 1000 revokes a second).
REVOKE_RATE = 1000
REVOKE_LIMIT = REVOKE_RATE // 2
#: etcd 3.4's default retry interval for an expired lease whose revoke did not happen
#: (``defaultExpiredleaseRetryInterval``); the server passes its request timeout instead.
EXPIRED_RETRY_SECONDS = 3.0


# --8<-- [start:server_chosen_id]
def server_chosen_id(next_request_id: Callable[[], int]) -> int:
    """The ID of a lease granted with ID 0: the member's next request ID with bit 63 cleared.

    etcd draws lease IDs from the generator of its request IDs (``idutil.Generator``): the low
    16 bits of the member ID, 40 bits of the milliseconds at the member's start, an 8-bit
    counter (the counter carries into the time bits). Clearing bit 63 keeps the ID positive,
    and an ID of 0 would mean "choose one", so it draws again (``v3_server.go``, LeaseGrant).
    """
    lease_id = NO_LEASE
    while lease_id == NO_LEASE:
        lease_id = next_request_id() & ((1 << 63) - 1)
    return lease_id


# --8<-- [end:server_chosen_id]


class Lessor:
    """The leases of one member: replicated grants and keys, and the leader's deadlines."""

    def __init__(
        self,
        min_ttl: int,
        *,
        retry_seconds: float = EXPIRED_RETRY_SECONDS,
        checkpointing: Checkpointing | None = None,
    ) -> None:
        """A lessor that grants at least ``min_ttl`` seconds (`kv.lease.min_ttl`), hands an
        expired lease out again ``retry_seconds`` after its revoke was due, and checkpoints
        long leases as ``checkpointing`` says (None: never)."""
        self.min_ttl = min_ttl
        self.retry_seconds = retry_seconds
        self.checkpointing = checkpointing
        self._leases: dict[int, Lease] = {}
        #: Which lease each key is attached to (etcd: ``itemMap``).
        self._owner: dict[bytes, int] = {}
        self._primary = False
        #: The leader's deadlines: when to look at each lease for expiry.
        self._deadlines = Schedule()
        #: The leader's checkpoints: when to checkpoint each long lease.
        self._checkpoints = Schedule()

    # -- replicated: applied on every member, in log order -------------------------------

    def grant(self, lease_id: int, ttl: int, now: float) -> Lease:
        """Apply a LeaseGrant: a lease of at least `min_ttl` seconds. On the leader it expires
        ``ttl`` seconds after ``now``; elsewhere it has no expiry.

        Raises:
            LeaseTTLTooLargeError: ``ttl`` is above `MAX_TTL`.
            LeaseExistsError: a lease with ``lease_id`` exists.
        """
        if lease_id == NO_LEASE:  # the server chooses before proposing: never in an entry
            raise LeaseNotFoundError()
        if ttl > MAX_TTL:
            raise LeaseTTLTooLargeError()
        if lease_id in self._leases:
            raise LeaseExistsError()
        lease = Lease(lease_id, max(ttl, self.min_ttl))
        self._leases[lease_id] = lease
        if self._primary:
            self._refresh(lease, now, extend=0.0)
            self._schedule_checkpoint(lease, now)
        return lease

    def restore(self, lease_id: int, ttl: int, checkpoint_ttl: int = 0) -> Lease:
        """A lease read back from disk at start (no keys yet: `set_key` attaches them from the
        store), with the remaining TTL its record kept, if checkpoints were persisted. The
        minimum TTL applies here too, in case the configuration changed."""
        lease = Lease(lease_id, max(ttl, self.min_ttl), checkpoint_ttl=checkpoint_ttl)
        self._leases[lease_id] = lease
        return lease

    def revoke(self, lease_id: int) -> list[bytes]:
        """Apply a LeaseRevoke: forget the lease and return its keys, sorted -- the caller
        deletes them, in that order, in one write (etcd: ``lessor.Revoke``).

        Raises:
            LeaseNotFoundError: no lease has ``lease_id``.
        """
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            raise LeaseNotFoundError()
        self._deadlines.discard(lease_id)
        self._checkpoints.discard(lease_id)
        for key in lease.keys:
            del self._owner[key]
        return sorted(lease.keys)

    def set_key(self, key: bytes, lease_id: int) -> None:
        """``key`` was just written with ``lease_id`` (`NO_LEASE`: without one, or deleted):
        detach it from its old lease, attach it to the new one. etcd's store does this on
        every put and delete (``mvcc/kvstore_txn.go``); a lease that no longer exists is
        ignored, as when a revoke's own deletes detach its keys."""
        old = self._owner.pop(key, NO_LEASE)
        if old in self._leases:
            self._leases[old].keys.discard(key)
        if lease_id in self._leases:
            self._leases[lease_id].keys.add(key)
            self._owner[key] = lease_id

    # -- reads ------------------------------------------------------------------------

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._leases

    def __len__(self) -> int:
        return len(self._leases)

    def __iter__(self) -> Iterator[Lease]:
        return iter(self._leases.values())

    def lookup(self, lease_id: int) -> Lease | None:
        """The lease with ``lease_id``, or None."""
        return self._leases.get(lease_id)

    def lease_of(self, key: bytes) -> int:
        """The lease ``key`` is attached to, or `NO_LEASE`."""
        return self._owner.get(key, NO_LEASE)

    def leases(self, now: float) -> list[Lease]:
        """Every lease, the soonest to expire first (etcd: ``Leases``, sorted by expiry; on a
        follower none expires, and kv orders them by ID)."""
        return sorted(self._leases.values(), key=lambda lease: (lease.remaining(now), lease.id))

    # -- the leader's: deadlines -------------------------------------------------------

    @property
    def is_primary(self) -> bool:
        """Is this the leader's lessor, the one that keeps deadlines?"""
        return self._primary

    # --8<-- [start:promote]
    def promote(self, now: float, extend: float) -> None:
        """This member became leader: every lease expires ``extend`` + its TTL from ``now``,
        or + its checkpointed remaining TTL if it has one, and long leases get their next
        checkpoint scheduled (etcd 3.4.20 and later: ``Promote``, fixed by PR #14253).

        With more leases than one second of revokes (`REVOKE_RATE`), leases whose new
        expiries bunch up are spread out, at most three quarters of the rate per second, so
        that a pile of them does not take every revoke slot at once (etcd: ``Promote``).
        """
        self._primary = True
        for lease in self._leases.values():
            self._refresh(lease, now, extend)
            self._schedule_checkpoint(lease, now)
        if len(self._leases) >= REVOKE_RATE:
            self._spread_expiries(now, extend)

    # --8<-- [end:promote]

    def demote(self) -> None:
        """This member is not the leader any more: no lease has an expiry here, and none is
        checkpointed from here."""
        self._primary = False
        for lease in self._leases.values():
            lease.expiry = None
        self._deadlines.clear()
        self._checkpoints.clear()

    def renew(self, lease_id: int, now: float) -> int:
        """A keep-alive: the lease expires its TTL after ``now``; return the TTL.

        Raises:
            NotPrimaryError: this is not the leader's lessor (the server forwards the renewal).
            LeaseNotFoundError: no lease has ``lease_id``.
            LeaseExpiredError: its deadline passed and its revoke is on its way; etcd makes the
                renewal wait for the revoke and then answer "not found" (a client must never
                believe it kept a lease whose keys are about to go).
        """
        if not self._primary:
            raise NotPrimaryError()
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFoundError()
        if lease.expired(now):
            raise LeaseExpiredError()
        # The full TTL, even before the checkpoint that clears `checkpoint_ttl` is applied
        # (`renewal_checkpoint`): etcd waits for that one, then refreshes from the full TTL.
        lease.expiry = now + lease.ttl
        self._deadlines.set(lease.id, lease.expiry)
        return lease.ttl

    def expired(self, now: float, limit: int = REVOKE_LIMIT) -> list[int]:
        """The leader's check (every 500 ms in etcd): up to ``limit`` leases to revoke now.

        A lease handed out is looked at again after `retry_seconds`: if it is still there, its
        revoke was lost, and it is handed out again (etcd: ``findExpiredLeases``).
        """
        if not self._primary:
            return []
        found: list[int] = []
        while len(found) < limit:
            lease_id = self._deadlines.pop_due(now)
            if lease_id is None:
                break
            self._deadlines.set(lease_id, now + self.retry_seconds)
            if self._leases[lease_id].expired(now):
                found.append(lease_id)
        return found

    # -- the leader's: checkpoints (`kv.lease.checkpoint`) -----------------------------

    def checkpoint(self, lease_id: int, remaining_ttl: int, now: float) -> Lease | None:
        """Apply one checkpoint of a LeaseCheckpoint entry: the lease's remaining TTL is
        ``remaining_ttl`` (0: none). On the leader, schedule the lease's next checkpoint.
        Return the lease, or None if it is gone (revoked meanwhile: nothing to do, as in
        etcd's ``Checkpoint``)."""
        lease = self._leases.get(lease_id)
        if lease is None:
            return None
        lease.checkpoint_ttl = remaining_ttl
        if self._primary:
            self._schedule_checkpoint(lease, now)
        return lease

    # --8<-- [start:due_checkpoints]
    def due_checkpoints(self, now: float, limit: int = CHECKPOINT_BATCH) -> list[Checkpoint]:
        """The leader's checkpoints to propose now, at most ``limit`` (one log entry's worth):
        for each lease whose checkpoint is due, its remaining TTL rounded up -- unless it has
        expired (its revoke is coming) or has its whole TTL left (a renewal just reset it: the
        full TTL says the same). etcd: ``findDueScheduledCheckpoints``.
        """
        if not self._primary or self.checkpointing is None:
            return []
        found: list[Checkpoint] = []
        while len(found) < limit:
            lease_id = self._checkpoints.pop_due(now)
            if lease_id is None:
                break
            lease = self._leases[lease_id]
            if lease.expired(now):
                continue
            remaining = math.ceil(lease.remaining(now))
            if remaining < lease.ttl:
                found.append(Checkpoint(lease_id, remaining))
        return found

    # --8<-- [end:due_checkpoints]

    def renewal_checkpoint(self, lease_id: int, now: float) -> Checkpoint | None:
        """The checkpoint a keep-alive of ``lease_id`` must see applied before it renews: one
        that clears the lease's checkpointed remaining TTL, so that a later leader gives it
        its full TTL again; None if there is nothing to clear (etcd: ``Renew`` proposes it,
        at most once per checkpoint, so renewals add at most one entry per interval)."""
        lease = self._leases.get(lease_id)
        if self.checkpointing is None or lease is None or not lease.checkpoint_ttl:
            return None
        if lease.expired(now):  # the renewal will wait for the revoke instead
            return None
        return Checkpoint(lease_id, 0)

    def _schedule_checkpoint(self, lease: Lease, now: float) -> None:
        """Checkpoint ``lease`` one interval from now if it will still have more than an
        interval left by its own count (etcd: ``scheduleCheckpointIfNeeded``, which compares
        with the interval in whole seconds)."""
        if self.checkpointing is None:
            return
        interval = self.checkpointing.interval
        if lease.resume_ttl > math.trunc(interval):
            self._checkpoints.set(lease.id, now + interval)

    def _refresh(self, lease: Lease, now: float, extend: float) -> None:
        lease.expiry = now + extend + lease.resume_ttl
        self._deadlines.set(lease.id, lease.expiry)

    def _spread_expiries(self, now: float, extend: float) -> None:
        """etcd's ``Promote`` adjustment: walk the leases by expiry in windows of a second,
        and delay each lease beyond ``3 * REVOKE_RATE // 4`` in its window."""
        leases = self.leases(now)
        target_per_second = 3 * REVOKE_RATE // 4
        base_window = leases[0].remaining(now)
        next_window = base_window + 1.0
        expires = 0
        for lease in leases:
            remaining = lease.remaining(now)
            if remaining > next_window:
                base_window, next_window, expires = remaining, remaining + 1.0, 1
                continue
            expires += 1
            if expires <= target_per_second:
                continue
            # Leases n seconds ahead of the base window need n seconds less of delay.
            delay = expires / target_per_second - (remaining - base_window)
            next_window = base_window + delay
            self._refresh(lease, now, delay + extend)
