"""A session: a lease kept alive, the identity behind a lock or a candidacy (chapter 9).

Every key a recipe writes is attached to its session's lease. While the process lives it
renews the lease every TTL/3 (clientv3's pace), so the keys stay; when the process dies, or is
cut off from the cluster for longer than the TTL, the lease expires and the cluster deletes the
keys at one revision, which is what wakes the next waiter (chapter 7's leases at work). A
session is etcd's ``clientv3/concurrency.Session``::

    async with await Session.open(client, ttl=10) as session:
        ...  # locks and campaigns under session.lease_id
    # leaving the block revoked the lease: every key of the session is gone

Failure cases:

* **The process dies.** Nothing is released at once: the keys stay until the TTL runs out. A
  short TTL frees a dead holder's lock sooner, and costs more keep-alives.
* **The cluster cannot be reached.** The keep-alive retries until the lease would have expired,
  then gives up and sets `Session.done`. The lease may have expired on the servers *earlier*
  than the session notices (a paused process, a slow network): whoever relies on a session must
  not trust it past `done`, and should protect what it writes with a fencing token
  (`kv.recipes.mutex.Mutex.revision`).
* **The lease is revoked** (``etcdctl lease revoke``): the next renewal answers TTL 0, and the
  session ends (`done`) with its keys already deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from kv.client import KeepAlive, KVClient
from kv.server.errors import EtcdError

#: Seconds a session's lease lives without renewal (etcd: concurrency defaultSessionTTL).
DEFAULT_TTL = 60
#: Seconds between attempts to reopen a failed keep-alive stream.
RETRY_SECONDS = 0.5


class Session:
    """A lease (``lease_id``) that this process keeps alive until `orphan` or `close`.

    Build one with `open`. Constructed directly, a session names a lease someone else keeps
    alive (the server's Lock and Election services do this with the lease a client sent).
    """

    def __init__(self, client: KVClient, lease_id: int) -> None:
        self.client = client
        self.lease_id = lease_id
        #: Set once the lease is no longer kept alive: revoked, expired, unreachable or orphaned.
        self.done = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, client: KVClient, *, ttl: int = DEFAULT_TTL, lease_id: int = 0, keep_alive: bool = True
    ) -> Self:
        """A session over a new lease of ``ttl`` seconds, or over lease ``lease_id`` if given.

        With ``keep_alive`` False nobody renews the lease: it lasts its TTL (etcd's servers open
        such "orphaned" sessions for the Lock and Campaign requests they serve).
        """
        if lease_id == 0:
            lease_id = (await client.lease_grant(ttl)).ID
        session = cls(client, lease_id)
        if keep_alive:
            session._keeper = asyncio.create_task(session._keep_alive(ttl))
        return session

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def orphan(self) -> None:
        """Stop renewing the lease; it, and every key on it, lives out its TTL."""
        if self._keeper is not None:
            self._keeper.cancel()
        self.done.set()

    async def close(self) -> None:
        """Stop renewing and revoke the lease: every key of the session is deleted at once."""
        self.orphan()
        if self._keeper is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        await self.client.lease_revoke(self.lease_id)

    # --8<-- [start:keep_alive]
    async def _keep_alive(self, ttl: int) -> None:
        """Renew every TTL/3 until the lease is gone or could not be renewed before it expired."""
        loop = asyncio.get_running_loop()
        expires = loop.time() + ttl
        stream: KeepAlive | None = None
        try:
            while True:
                try:
                    stream = stream or self.client.lease_keep_alive(self.lease_id)
                    answer = await stream.renew()
                except EtcdError:
                    # Cut off: clientv3 keeps retrying on a fresh stream until the lease would
                    # have expired; after that, renewing could only answer "gone".
                    if stream is not None:
                        stream.close()
                        stream = None
                    if loop.time() + RETRY_SECONDS >= expires:
                        return
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                if answer.TTL <= 0:
                    return  # revoked, or expired while we could not renew: the keys are gone
                expires = loop.time() + answer.TTL
                await asyncio.sleep(answer.TTL / 3)
        finally:
            if stream is not None:
                stream.close()
            self.done.set()

    # --8<-- [end:keep_alive]
