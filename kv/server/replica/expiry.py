"""The leader's lease expiry: find the leases past their deadline, confirm leadership, and
propose a revoke for each through the log (chapter 7).

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
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
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
    """Run for the member's life: on the leader, revoke each lease past its deadline."""
    pending = asyncio.Semaphore(MAX_PENDING_REVOKES)
    revokes: set[asyncio.Task[None]] = set()
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        if not replica.is_leader:
            continue
        term = replica.raw.term
        for lease_id in replica.machine.leases.lessor.expired(time.monotonic()):
            task = asyncio.get_running_loop().create_task(_revoke(replica, lease_id, term, pending))
            revokes.add(task)  # keep a reference until it is done
            task.add_done_callback(revokes.discard)


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
