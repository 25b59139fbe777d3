"""Lease checkpoints: the leader writes down, through the log, how long leases have left
(chapter 7; etcd 3.4's ``--experimental-enable-lease-checkpoint``).

Theory of operation
-------------------
Only the leader knows when a lease ends (`kv.lease.lessor`), so a new leader cannot know how
much of a lease's TTL has passed: it gives every lease its full TTL again, plus an election
timeout. A lease of an hour whose holder died 50 minutes ago gets another hour, and if the
leader changes more often than once an hour, it never expires at all (etcd issue #9888).

A *checkpoint* fixes that for long leases. Every `CHECKPOINT_INTERVAL` (5 minutes) the leader
proposes a ``LeaseCheckpointRequest`` through the log, carrying the remaining TTL of each
lease that is worth it: more than the interval left when it was scheduled, and less than its
full TTL left now (else the full TTL says the same). Every member applies it by writing the
remaining TTL on its copy of the lease (`kv.lease.Lease.checkpoint_ttl`), and a member that
becomes leader counts from it instead of from the full TTL (`kv.lease.Lease.resume_ttl`). So
after a leader change a lease has at most one interval more than it should, not a whole TTL.

A keep-alive resets a lease to its full TTL; if the lease carries a checkpoint, the leader
first proposes a checkpoint of 0 ("none", so the next leader will use the full TTL again),
waits for it to be applied, and only then renews: at most two log entries per lease and
interval, however often clients renew (etcd's PR #9924).

The checkpoints are applied state, but whether they reach the *backend* depends on a second
flag, as in etcd 3.4.20 and later (`Checkpointing.persist`):

* ``--experimental-enable-lease-checkpoint`` alone keeps them in memory. A member that
  restarts reads its leases back without them, and does not apply the checkpoint entries
  again (they are below its consistent index): if it becomes leader, the full TTL is back
  (etcd issue #17132).
* ``--experimental-enable-lease-checkpoint-persist`` (which needs the first) also writes each
  one into the lease's record (etcd: ``leasepb.Lease.RemainingTTL``), and a restart reads it
  back (etcd PRs #13508, #14253).

Which behaviour kv matches, and why: etcd 3.4.23 as it is, checked on the real one (chapter 7
says how). 3.4.23 has the fixes of PRs #13508/#14253 -- a new leader schedules checkpoints for
the leases it inherits (before them, checkpoints stopped after the first leader change), and
the persist flag exists, though its ``--help`` does not list it -- so kv has both, and without
the persist flag it forgets checkpoints on a restart, as 3.4.23 does. The one corner where
3.4.23 does otherwise is a restart with no key written since the last checkpoint: etcd 3.4's
consistent index moves only with key-space writes, so it replays the checkpoint from its log.
kv's consistent index covers every applied entry (chapter 2), and kv does not copy that
accident. kv's interval flag is its own: etcd 3.4 fixes the interval at 5 minutes.

The decision "which leases to checkpoint now" is the pure lessor's
(`kv.lease.Lessor.due_checkpoints`); the server's lease loop proposes what it returns
(`kv.server.replica.expiry`) and the apply layer applies it (`kv.server.applied.leases`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: How often a lease is checkpointed (etcd 3.4: ``defaultLeaseCheckpointInterval``, 5 minutes;
#: etcd 3.4 has no flag for it, only its integration tests set ``LeaseCheckpointInterval``).
CHECKPOINT_INTERVAL = 300.0
#: The most checkpoints one log entry carries (etcd: ``maxLeaseCheckpointBatchSize``).
CHECKPOINT_BATCH = 1000
#: The most checkpoint entries one pass of the leader's loop proposes, every 500 ms (etcd:
#: ``leaseCheckpointRate / 2`` batches).
CHECKPOINT_BATCHES_PER_PASS = 1000 // 2


@dataclass(frozen=True, slots=True)
class Checkpointing:
    """How a member checkpoints leases: ``interval`` seconds apart; into the backend too if
    ``persist``. A lessor without one never checkpoints (etcd: no ``Checkpointer`` set)."""

    interval: float = CHECKPOINT_INTERVAL
    persist: bool = False


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One lease's remaining TTL, in whole seconds, as a checkpoint records it; 0 clears it
    (etcd: ``etcdserverpb.LeaseCheckpoint``)."""

    lease_id: int
    remaining_ttl: int
