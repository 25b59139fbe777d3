"""Asking a real cluster, through its public API only: the I/O half of attach mode.

`Poller.poll` asks every endpoint that is due (`tui.attach.model.Tracker.due`) for its
``Maintenance.Status``, all at once, each bounded by a timeout, and the first that answers for
``Cluster.MemberList`` (the members' names, and members not given as endpoints). It never
raises for a member that is down: the failure goes into the model, which schedules the retry.

A member that failed gets a *new* gRPC channel for its next attempt, with a subchannel of its
own: a channel that saw "connection refused" runs gRPC's reconnect backoff, which grows to two
minutes (grpc: doc/connection-backoff.md) -- a restarted member would stay DOWN on screen
long after it came back. Our own backoff (`tui.attach.model.Backoff`) replaces it.

`Poller.any_client` and `Poller.client_for` give the key browser and the controls a client:
any member that answers, or the one a request must go to (MoveLeader: the leader).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from kv.client import KVClient
from kv.server.errors import EtcdError
from tui.attach.model import Backoff, MemberRow, Members, Sample

T = TypeVar("T")

#: Seconds one Status (or MemberList) may take before its member counts as DOWN.
POLL_TIMEOUT = 1.0
#: gRPC channel arguments for a connection of our own (see the module docstring).
_OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
#: The codes of a member that is away rather than of a cluster that refused (see any_client).
_AWAY = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


def describe_error(error: BaseException) -> str:
    """One short line for the members table: gRPC's code and message, or what timed out."""
    if isinstance(error, EtcdError):
        # gRPC's text for a refused connection runs over two lines of a terminal; the last
        # words are the ones that matter ("... Failed to connect to remote host: Connection
        # refused").
        message = (
            error.message.rsplit(": ", 1)[-1]
            if "Failed to connect" in error.message
            else error.message
        )
        return f"{error.code.name}: {message}"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}"


class Poller:
    """The endpoints of one cluster, their clients, and the model of what they said."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        timeout: float = POLL_TIMEOUT,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.members = Members(endpoints, backoff)
        self.timeout = timeout
        self.clock = clock
        self._clients: dict[str, KVClient] = {}

    def _client(self, endpoint: str) -> KVClient:
        client = self._clients.get(endpoint)
        if client is None:
            client = KVClient(endpoint, timeout=self.timeout, options=_OWN_CONNECTION)
            self._clients[endpoint] = client
        return client

    async def _forget(self, endpoint: str) -> None:
        client = self._clients.pop(endpoint, None)
        if client is not None:
            with contextlib.suppress(grpc.RpcError, RuntimeError):
                await client.close()

    async def _bounded(self, call: Awaitable[T]) -> T:
        # The gRPC deadline bounds the call on the wire; this bounds everything else too
        # (name resolution, a channel that is being torn down).
        return await asyncio.wait_for(call, self.timeout + 0.5)

    async def _poll_one(self, endpoint: str) -> bool:
        tracker = self.members.trackers[endpoint]
        try:
            status = await self._bounded(self._client(endpoint).status(timeout=self.timeout))
        except (EtcdError, grpc.RpcError, TimeoutError, OSError) as error:
            tracker.failed(describe_error(error), self.clock())
            await self._forget(endpoint)
            return False
        tracker.answered(Sample.from_status(status), self.clock())
        return True

    async def poll(self) -> list[MemberRow]:
        """Ask every due endpoint once; the rows after it."""
        now = self.clock()
        due = [e for e, tracker in self.members.trackers.items() if tracker.due(now)]
        answered = await asyncio.gather(*(self._poll_one(endpoint) for endpoint in due))
        for endpoint, ok in zip(due, answered, strict=True):
            if ok:
                with contextlib.suppress(EtcdError, grpc.RpcError, TimeoutError, OSError):
                    client = self._client(endpoint)
                    listed = await self._bounded(client.member_list(timeout=self.timeout))
                    self.members.learn_members(listed)
                    break
        return self.members.rows(self.clock())

    def rows(self) -> list[MemberRow]:
        return self.members.rows(self.clock())

    def client_for(self, endpoint: str) -> KVClient:
        """A client of ``endpoint`` (one of the tracked endpoints)."""
        return self._client(endpoint)

    async def any_client(self, call: Callable[[KVClient], Awaitable[T]]) -> T:
        """``call`` with a client of the first member that answers, trying them in turn (the
        ones last seen up first); the last member's error if none does.

        A member that is away (UNAVAILABLE), too slow (DEADLINE_EXCEEDED) or dropped while it
        answered (CANCELLED: its channel was closed after a failed poll) passes the call on to
        the next. For a write that timed out this may apply it twice -- the caveat of every
        etcd client that retries (clientv3 retries only what it knows is safe); a put or
        delete typed by a person, shown with its revision, is fine with it.
        """
        rows = sorted(self.rows(), key=lambda row: not row.up)
        last: BaseException = EtcdError(grpc.StatusCode.UNAVAILABLE, "no endpoint to ask")
        for row in rows:
            try:
                return await self._bounded(call(self._client(row.endpoint)))
            except EtcdError as error:
                if error.code not in _AWAY:
                    raise  # the cluster's answer, not a member that is away
                last = error
            except TimeoutError as error:
                last = error
        raise last

    async def close(self) -> None:
        for endpoint in list(self._clients):
            await self._forget(endpoint)
