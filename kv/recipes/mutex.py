"""A distributed lock: the first session in line holds it (chapter 9).

`Mutex.lock` puts the session's key in the line (`kv.recipes.queue`) with one transaction --
create ``name/<lease>`` if it does not exist, and read the first key in line -- and returns at
once if that first key is its own; otherwise it waits for the keys before it to be deleted.
`Mutex.unlock` deletes the key, which wakes the next in line. etcd's
``clientv3/concurrency.Mutex``, and its ``etcdctl lock``::

    async with await Session.open(client, ttl=10) as session:
        mutex = Mutex(session, "printer")
        await mutex.lock()
        try:
            await client.txn([mutex.is_owner()], [put_op("printer/job", "...")])
        finally:
            await mutex.unlock()

Failure cases:

* **The holder dies.** Its key lives until its session's lease expires (up to the TTL);
  then the cluster deletes it and the next waiter holds the lock.
* **The holder is paused or cut off for longer than the TTL** (a long GC pause, a partition):
  its lease expires and another session takes the lock, *while the old holder still believes
  it holds it*. No lock built on leases can prevent that. The fencing token can: `revision`,
  the key's create revision, grows with each new holder. A resource that remembers the
  largest token it has seen can refuse the stale holder's late writes; a write to kv itself
  can be guarded in a txn with `is_owner`, which fails once the key is gone.
* **A waiter gives up** (its task is cancelled, its watch is lost): it deletes its own key so
  that it does not hold up the line; if that delete cannot reach the cluster, the key leaves
  the line when the session's lease ends.
* **Lock twice with one session**: the key is already there; the second `lock` finds it and
  waits (or returns) with the same key and token. A lock is per session, not per task.
"""

from __future__ import annotations

import asyncio
import contextlib

from kv.api.etcdserverpb import rpc_pb2
from kv.client import Bytes, compare, put_op, range_op
from kv.recipes.queue import first_in_line_op, line_of, place_in_line, wait_for_turn
from kv.recipes.session import Session
from kv.server.errors import EtcdError


class Mutex:
    """The lock ``name`` for ``session``: `lock`, then `unlock`."""

    def __init__(self, session: Session, name: Bytes) -> None:
        self.session = session
        self.prefix = line_of(name)
        #: This session's key in the line, ``name/<lease id hex>``.
        self.key = place_in_line(self.prefix, session.lease_id)
        #: The key's create revision once `lock` returned: the fencing token.
        self.revision = 0
        #: The header of the answer that made this session the holder.
        self.header = rpc_pb2.ResponseHeader()

    # --8<-- [start:lock]
    async def lock(self) -> None:
        """Return once this session holds the lock; cancelled, leave the line.

        Raises:
            EtcdError: the cluster refused (an unknown lease: ``etcdserver: requested lease
                not found``) or could not be reached.
            LostWatchError: the wait's watch ended early.
        """
        client = self.session.client
        # Join the line unless this session is in it already, and read who is first: one txn.
        joined = await client.txn(
            [compare(self.key, "create", "=", 0)],
            [put_op(self.key, b"", lease=self.session.lease_id), first_in_line_op(self.prefix)],
            [range_op(self.key), first_in_line_op(self.prefix)],
        )
        self.revision = joined.header.revision  # our put's revision is our key's create rev
        if not joined.succeeded:
            self.revision = joined.responses[0].response_range.kvs[0].create_revision
        first = joined.responses[1].response_range.kvs
        if not first or first[0].create_revision == self.revision:
            self.header = joined.header
            return
        try:
            self.header = await wait_for_turn(client, self.prefix, self.revision)
        except BaseException:
            await asyncio.shield(self._leave_line())
            raise

    # --8<-- [end:lock]

    async def unlock(self) -> rpc_pb2.DeleteRangeResponse:
        """Release the lock (or leave the line) by deleting this session's key."""
        return await self.session.client.delete_range(self.key)

    # --8<-- [start:is_owner]
    def is_owner(self) -> rpc_pb2.Compare:
        """A txn compare that holds only while this session still holds the lock it got."""
        return compare(self.key, "create", "=", self.revision)

    # --8<-- [end:is_owner]

    async def _leave_line(self) -> None:
        with contextlib.suppress(EtcdError):  # then the lease's end takes the key out
            await self.unlock()
