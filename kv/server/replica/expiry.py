"""The leader's lease expiry, on the server: every half second, find the leases past their
deadline, confirm leadership, and propose a revoke for each through the log; then propose the
lease checkpoints that are due (chapter 7).

The steps and why they are safe are `kv.lease.expiry`'s, the same for the simulator: which
leases and how many at once (`kv.lease.Expiry.check`, `Expiry.finished`), and that a revoke
is proposed only by a leader that a ReadIndex round has just confirmed in the term it
decided in (`Expiry.confirmed`; etcd bug #15247). This module runs them with asyncio: the
pass every `CHECK_SECONDS`, a task per revoke, the round, the proposal.

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
from kv.lease.expiry import CHECK_SECONDS, Expiry, Revoke
from kv.server import errors
from kv.server.errors import EtcdError

if TYPE_CHECKING:  # the replica starts this loop: no import cycle at run time
    from kv.server.replica.replica import Replica

log = logging.getLogger(__name__)


# --8<-- [start:loop]
async def revoke_expired(replica: Replica) -> None:
    """Run for the member's life: on the leader, revoke each lease past its deadline, and
    propose the lease checkpoints that are due."""
    expiry = Expiry()
    tasks: set[asyncio.Task[None]] = set()  # references, until each is done
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        if not replica.is_leader:
            continue
        lessor = replica.machine.leases.lessor
        for revoke in expiry.check(lessor, replica.raw.term, now()):
            _start(replica, expiry, revoke, tasks)
        for batch in _due_batches(replica):
            _keep(asyncio.get_running_loop().create_task(_checkpoint(replica, batch)), tasks)


def _start(
    replica: Replica, expiry: Expiry, revoke: Revoke, tasks: set[asyncio.Task[None]]
) -> None:
    _keep(asyncio.get_running_loop().create_task(_revoke(replica, expiry, revoke, tasks)), tasks)


def _keep(task: asyncio.Task[None], tasks: set[asyncio.Task[None]]) -> None:
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _revoke(
    replica: Replica, expiry: Expiry, revoke: Revoke, tasks: set[asyncio.Task[None]]
) -> None:
    try:
        await confirm_leadership(replica, expiry, revoke)
        request = rpc_pb2.LeaseRevokeRequest(ID=revoke.lease_id)
        result = await replica.proposals.propose(InternalRaftRequest(lease_revoke=request))
    except EtcdError as error:
        log.warning("failed to revoke lease %x: %s (will retry)", revoke.lease_id, error)
    else:
        if isinstance(result, EtcdError):  # revoked meanwhile (by a client, or twice)
            log.debug("lease %x was gone before its revoke: %s", revoke.lease_id, result)
        else:
            log.info("revoked expired lease %x", revoke.lease_id)
    for waiting in expiry.finished(revoke):  # a slot is free: the next revokes start
        _start(replica, expiry, waiting, tasks)


async def confirm_leadership(replica: Replica, expiry: Expiry, revoke: Revoke) -> None:
    """Return only if this member leads in the term ``revoke`` was decided in, confirmed by
    a majority just now.

    Raises:
        EtcdError: it does not, or the round did not finish (``not leader``, a timeout).
    """
    await replica.proposals.linearizable_read()  # a heartbeat round acknowledged by a majority
    if not expiry.confirmed(revoke, replica.raw.term if replica.is_leader else None):
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
