"""The leader's lease duties: find the leases past their deadline, confirm leadership, and
propose a revoke for each through the log; and propose the lease checkpoints that are due
(chapter 7).

No member deletes a lease's keys on its own clock (`kv.lease.lessor` says why). Every
`CHECK_SECONDS` the leader asks its lessor which leases are past their deadline
(`kv.lease.Lessor.expired`, at most 500 a pass), and proposes a ``LeaseRevokeRequest`` for
each, at most `MAX_PENDING_REVOKES` at a time (etcd: ``revokeExpiredLeases`` and the
``expiredLeaseC`` loop of ``etcdserver/server.go``). Keys therefore go between TTL and about
TTL + 0.5 s after the last renewal, plus the time to commit the revoke.

Before proposing, the leader confirms that it still leads, with a ReadIndex round (Raft thesis
§6.4: a heartbeat acknowledged by a majority) in its current term. A leader cut off from the
others does not know it was deposed, and its clock may run on past the deadline while the new
leader has extended the lease (etcd bug #15247: an old leader revoked leases; fixed by the
same check, ``ensureLeadership``). Its proposal could not commit anyway, but a revoke it
*believed* in would already mislead a renewal waiting for it; confirming first costs one
heartbeat round per pass.

A revoke that fails (the leader changed, the proposal timed out) is not retried here: the
lessor hands the lease out again after its retry interval, and the next pass proposes again.

With ``--experimental-enable-lease-checkpoint``, the same pass then asks the lessor for the
checkpoints that are due (`kv.lease.Lessor.due_checkpoints`) and proposes them, a
``LeaseCheckpointRequest`` of at most 1000 per entry (etcd: ``checkpointScheduledLeases``).
No leadership check first: a checkpoint from a deposed leader cannot commit, and one that did
would only record a remaining TTL the lease really had. A checkpoint that fails is dropped,
as in etcd 3.4, whose checkpointer returns no error: the lease is checkpointed again when the
next leader promotes it, or when a renewal clears its checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.lease import CHECKPOINT_BATCH, CHECKPOINT_BATCHES_PER_PASS, Checkpoint
from kv.server import errors
from kv.server.errors import EtcdError

if TYPE_CHECKING:  # the replica starts this loop: no import cycle at run time
    from kv.server.replica.replica import Replica

log = logging.getLogger(__name__)

#: How often the leader looks for expired leases (etcd: 500 ms).
CHECK_SECONDS = 0.5
#: Revokes under way at once, at most (etcd: ``maxPendingRevokes``).
MAX_PENDING_REVOKES = 16


# --8<-- [start:loop]
async def revoke_expired(replica: Replica) -> None:
    """Run for the member's life: on the leader, revoke each lease past its deadline, and
    propose the lease checkpoints that are due."""
    pending = asyncio.Semaphore(MAX_PENDING_REVOKES)
    proposals: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        if not replica.is_leader:
            continue
        term = replica.raw.term
        lessor = replica.machine.leases.lessor
        tasks = [_revoke(replica, lease_id, term, pending) for lease_id in lessor.expired(now())]
        tasks += [_checkpoint(replica, batch) for batch in _due_batches(replica)]
        for coroutine in tasks:
            task = loop.create_task(coroutine)
            proposals.add(task)  # keep a reference until it is done
            task.add_done_callback(proposals.discard)


async def _revoke(replica: Replica, lease_id: int, term: int, pending: asyncio.Semaphore) -> None:
    async with pending:
        try:
            await confirm_leadership(replica, term)
            request = rpc_pb2.LeaseRevokeRequest(ID=lease_id)
            result = await replica.proposals.propose(InternalRaftRequest(lease_revoke=request))
        except EtcdError as error:
            log.warning("failed to revoke lease %x: %s (will retry)", lease_id, error)
            return
        if isinstance(result, EtcdError):  # revoked meanwhile (by a client, or twice)
            log.debug("lease %x was gone before its revoke: %s", lease_id, result)
        else:
            log.info("revoked expired lease %x", lease_id)


async def confirm_leadership(replica: Replica, term: int) -> None:
    """Return only if this member leads in ``term``, confirmed by a majority just now.

    Raises:
        EtcdError: it does not, or the round did not finish (``not leader``, a timeout).
    """
    await replica.proposals.linearizable_read()  # a heartbeat round acknowledged by a majority
    if not replica.is_leader or replica.raw.term != term:
        raise errors.NOT_LEADER


# --8<-- [end:loop]


# --8<-- [start:checkpoints]
def _due_batches(replica: Replica) -> list[list[Checkpoint]]:
    """The checkpoints due now, one log entry's worth per batch, as many batches as one pass
    may propose (etcd: ``checkpointScheduledLeases``' rate limit)."""
    batches: list[list[Checkpoint]] = []
    lessor = replica.machine.leases.lessor
    while len(batches) < CHECKPOINT_BATCHES_PER_PASS:
        batch = lessor.due_checkpoints(now(), CHECKPOINT_BATCH)
        if batch:
            batches.append(batch)
        if len(batch) < CHECKPOINT_BATCH:
            break
    return batches


async def _checkpoint(replica: Replica, batch: list[Checkpoint]) -> None:
    try:
        await propose_checkpoints(replica, batch)
    except EtcdError as error:
        log.warning("failed to checkpoint %d lease(s): %s", len(batch), error)


async def propose_checkpoints(replica: Replica, checkpoints: list[Checkpoint]) -> None:
    """Propose ``checkpoints`` as one LeaseCheckpoint entry and wait until it is applied.

    Raises:
        EtcdError: the proposal failed (not leader, a timeout).
    """
    request = rpc_pb2.LeaseCheckpointRequest(
        checkpoints=[
            rpc_pb2.LeaseCheckpoint(ID=c.lease_id, remaining_TTL=c.remaining_ttl)
            for c in checkpoints
        ]
    )
    await replica.proposals.propose(InternalRaftRequest(lease_checkpoint=request))


def now() -> float:
    """The leader's clock for lease deadlines and checkpoints."""
    return time.monotonic()


# --8<-- [end:checkpoints]
