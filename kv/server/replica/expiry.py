"""The leader's lease expiry, on the server: every half second, find the leases past their
deadline, confirm leadership, and propose a revoke for each through the log (chapter 7).

The steps and why they are safe are `kv.lease.expiry`'s, the same for the simulator: which
leases and how many at once (`kv.lease.Expiry.check`, `Expiry.finished`), and that a revoke
is proposed only by a leader that a ReadIndex round has just confirmed in the term it
decided in (`Expiry.confirmed`; etcd bug #15247). This module runs them with asyncio: the
pass every `CHECK_SECONDS`, a task per revoke, the round, the proposal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.lease.expiry import CHECK_SECONDS, Expiry, Revoke
from kv.server import errors
from kv.server.errors import EtcdError

if TYPE_CHECKING:  # the replica starts this loop: no import cycle at run time
    from kv.server.replica.replica import Replica

log = logging.getLogger(__name__)


# --8<-- [start:loop]
async def revoke_expired(replica: Replica) -> None:
    """Run for the member's life: on the leader, revoke each lease past its deadline."""
    expiry = Expiry()
    revokes: set[asyncio.Task[None]] = set()  # references, until each is done
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        if not replica.is_leader:
            continue
        lessor = replica.machine.leases.lessor
        for revoke in expiry.check(lessor, replica.raw.term, time.monotonic()):
            _start(replica, expiry, revoke, revokes)


def _start(
    replica: Replica, expiry: Expiry, revoke: Revoke, revokes: set[asyncio.Task[None]]
) -> None:
    task = asyncio.get_running_loop().create_task(_revoke(replica, expiry, revoke, revokes))
    revokes.add(task)
    task.add_done_callback(revokes.discard)


async def _revoke(
    replica: Replica, expiry: Expiry, revoke: Revoke, revokes: set[asyncio.Task[None]]
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
        _start(replica, expiry, waiting, revokes)


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
