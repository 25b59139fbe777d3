"""kv.lease: the lessor, which grants, renews, expires and revokes leases (chapter 7). Pure: no
I/O, no clock -- every moment it needs is a ``now`` (seconds, any monotonic origin) passed in.

A lease is a promise with a deadline: "keep these keys while I am alive". A client grants a
lease of a TTL, attaches keys to it with ``put --lease``, and renews it (keep-alive) more
often than the TTL; if it stops -- it crashed, or lost the network -- the lease expires and the
cluster deletes its keys. Locks, elections and service registration are built on this.

Modules, in reading order:

* `lease` -- `Lease`: an ID, a TTL, an expiry (only on the leader) and the attached keys;
  `min_ttl` (from the election timeout) and `MAX_TTL`.
* `lessor` -- `Lessor`: the leases of one member. Granting, revoking and attaching keys are
  *applied* state, the same on every member (they come through the Raft log); renewing and
  expiring are the *leader's* (etcd's "primary lessor"): `Lessor.promote` when a member
  becomes leader, `Lessor.demote` when it stops being one.
* `checkpoint` -- `Checkpointing`, `Checkpoint`: the leader's record, through the log, of the
  time long leases have left, so that a new leader does not give them their whole TTL again
  (etcd 3.4's ``--experimental-enable-lease-checkpoint``).
* `schedule` -- `Schedule`: lease IDs by time, the leader's deadlines and checkpoints.
* `expiry` -- `Expiry`: the leader's revokes of expired leases, step by step (which, how
  many at once, and only once a ReadIndex round confirmed its leadership), for the server's
  loop and the simulator's alike.
* `errors` -- the errors, with etcd's messages.
"""

from kv.lease.checkpoint import (
    CHECKPOINT_BATCH,
    CHECKPOINT_BATCHES_PER_PASS,
    CHECKPOINT_INTERVAL,
    Checkpoint,
    Checkpointing,
)
from kv.lease.errors import (
    LeaseError,
    LeaseExistsError,
    LeaseExpiredError,
    LeaseNotFoundError,
    LeaseTTLTooLargeError,
    NotPrimaryError,
)
from kv.lease.expiry import CHECK_SECONDS, MAX_PENDING_REVOKES, Expiry, Revoke
from kv.lease.lease import FOREVER_SECONDS, MAX_TTL, NO_LEASE, Lease, min_ttl
from kv.lease.lessor import (
    EXPIRED_RETRY_SECONDS,
    REVOKE_LIMIT,
    REVOKE_RATE,
    Lessor,
    server_chosen_id,
)

__all__ = [
    "CHECKPOINT_BATCH",
    "CHECKPOINT_BATCHES_PER_PASS",
    "CHECKPOINT_INTERVAL",
    "CHECK_SECONDS",
    "EXPIRED_RETRY_SECONDS",
    "FOREVER_SECONDS",
    "MAX_PENDING_REVOKES",
    "MAX_TTL",
    "NO_LEASE",
    "REVOKE_LIMIT",
    "REVOKE_RATE",
    "Checkpoint",
    "Checkpointing",
    "Expiry",
    "Lease",
    "LeaseError",
    "LeaseExistsError",
    "LeaseExpiredError",
    "LeaseNotFoundError",
    "LeaseTTLTooLargeError",
    "Lessor",
    "NotPrimaryError",
    "Revoke",
    "min_ttl",
    "server_chosen_id",
]
