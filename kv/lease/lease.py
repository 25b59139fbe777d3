"""One lease, and the bounds on its TTL (chapter 7).

A `Lease` is mostly replicated state -- its ID, its TTL and the keys attached to it are the
same on every member, because they change only when a log entry is applied. Its *expiry* is
not: only the leader keeps one (etcd: a lease on a follower expires "forever"), because only
the leader decides that a lease is over. So a follower's clock never deletes a key, and a
member's clock never has to agree with another's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: The ID that means "no lease" on a key, and "choose one for me" in a LeaseGrant.
NO_LEASE = 0
#: The largest TTL a lease may be granted (etcd: ``lease.MaxLeaseTTL``, about 285 years).
MAX_TTL = 9_000_000_000
#: What etcd's ``Lease.Remaining`` says of a lease with no expiry: Go's largest duration,
#: ``math.MaxInt64`` nanoseconds, in whole seconds.
FOREVER_SECONDS = (2**63 - 1) // 1_000_000_000


# --8<-- [start:min_ttl]
def min_ttl(election_ms: int, heartbeat_ms: int) -> int:
    """The shortest TTL a member grants, in seconds: 1.5 election timeouts, rounded up.

    A lease shorter than that could expire during a leader election, before anyone could
    renew it. etcd computes it in whole ticks (``etcdserver/server.go``:
    ``(3 * electionTicks / 2) * heartbeat``, integer division), then rounds up to a second:
    2 s for the default 100 ms / 1000 ms.
    """
    election_ticks = election_ms // heartbeat_ms
    return math.ceil((3 * election_ticks // 2) * heartbeat_ms / 1000)


# --8<-- [end:min_ttl]


@dataclass(slots=True, eq=False)
class Lease:
    """A granted lease: replicated ``id``, ``ttl`` and ``keys``; the leader's ``expiry``."""

    id: int
    #: The granted TTL in seconds, after the minimum was applied.
    ttl: int
    #: When the lease ends, on the caller's clock; None on a follower ("forever").
    expiry: float | None = None
    #: The keys attached to it (etcd: ``itemSet``).
    keys: set[bytes] = field(default_factory=set)
    #: The remaining TTL its last checkpoint recorded, in seconds; 0 = none (etcd:
    #: ``remainingTTL``; `kv.lease.checkpoint`). Replicated: applied on every member.
    checkpoint_ttl: int = 0

    @property
    def resume_ttl(self) -> int:
        """What a new leader counts the lease from: its checkpointed remaining TTL if it has
        one, else its full TTL (etcd: ``Lease.RemainingTTL``)."""
        return self.checkpoint_ttl if self.checkpoint_ttl > 0 else self.ttl

    def remaining(self, now: float) -> float:
        """Seconds until the lease expires (negative once it has); `FOREVER_SECONDS` without
        an expiry."""
        if self.expiry is None:
            return float(FOREVER_SECONDS)
        return self.expiry - now

    def expired(self, now: float) -> bool:
        """Has the lease's deadline passed? Never on a follower."""
        return self.expiry is not None and self.expiry <= now

    def remaining_ttl(self, now: float) -> int:
        """The TTL that TimeToLive reports: the remaining seconds, truncated toward zero
        (etcd: ``int64(Remaining().Seconds())``), so a lease granted for 10 s reads 9 at once."""
        return math.trunc(self.remaining(now))
