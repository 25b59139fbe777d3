"""Leader election: the first session in line leads, and says so in its key's value
(chapter 9).

A candidate `Election.campaign`\\ s by putting ``name/<lease>`` with its value (its address,
say) and waiting until every key created before it is gone: then it leads. It may change the
value with `Election.proclaim`, and steps down with `Election.resign` (deleting its key).
Anyone can ask who leads (`Election.leader`: the first key in line) or follow every change
(`Election.observe`). etcd's ``clientv3/concurrency.Election``, and its ``etcdctl elect``::

    async with await Session.open(client, ttl=10) as session:
        election = Election(session, "scheduler")
        await election.campaign(b"10.0.0.7:8080")  # returns once we lead
        ...
        await election.resign()

Proclaim and resign compare the key's create revision with the one the campaign got (the
`Leadership`), so a leader whose key expired and was replaced -- even by its own session's
new key -- cannot overwrite or delete someone else's leadership.

Failure cases:

* **The leader dies or is partitioned away** for longer than its TTL: its lease expires, its
  key is deleted, and the next candidate in line leads. One leader at a time is what the line
  guarantees *in the store*; the old leader may not know yet that it lost (see
  `kv.recipes.mutex` on fencing): `proclaim` tells it, with `NotLeaderError`.
* **A candidate is cancelled while waiting**: it resigns (deletes its key) so that it cannot
  become leader later with nobody there. If the wait fails otherwise (a lost watch, an
  unreachable member) the key stays in line until the session ends: close the session.
* **Campaign again with the same session**: the key is found; a different value is
  proclaimed, and the candidate waits for its turn as before.
* **Nobody leads**: `leader` raises `NoLeaderError`; `observe` waits for the first leader.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from kv.api.etcdserverpb import rpc_pb2
from kv.api.mvccpb import kv_pb2
from kv.client import Bytes, compare, delete_op, prefix_end, put_op, range_op
from kv.recipes.errors import LostWatchError, NoLeaderError, NotLeaderError
from kv.recipes.queue import first_in_line, line_of, place_in_line, wait_for_turn
from kv.recipes.session import Session


@dataclass(frozen=True, slots=True)
class Leadership:
    """Proof of a won campaign: the leader's key and its create revision (etcd's LeaderKey)."""

    key: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class Leader:
    """Who leads: the leader's key-value, and the header of the answer that said so."""

    header: rpc_pb2.ResponseHeader
    kv: kv_pb2.KeyValue


class Election:
    """The election ``name``, as seen by ``session``: campaign, proclaim, resign, observe."""

    def __init__(self, session: Session, name: Bytes, leadership: Leadership | None = None) -> None:
        """``leadership``: one won earlier, perhaps by another process (etcd's
        ``ResumeElection``); the server's Proclaim and Resign act on the one a client sends."""
        self.session = session
        self.prefix = line_of(name)
        #: This session's leadership, once `campaign` returned; None after `resign`.
        self.leadership = leadership
        #: The header of the last answer that changed the leadership.
        self.header = rpc_pb2.ResponseHeader()

    # --8<-- [start:campaign]
    async def campaign(self, value: Bytes) -> None:
        """Return once this session leads, announcing ``value``; cancelled, resign.

        Raises:
            EtcdError: the cluster refused (an unknown lease) or could not be reached.
            LostWatchError: the wait's watch ended early.
        """
        client, lease = self.session.client, self.session.lease_id
        key = place_in_line(self.prefix, lease)
        joined = await client.txn(
            [compare(key, "create", "=", 0)],
            [put_op(key, value, lease=lease)],
            [range_op(key)],
        )
        self.leadership = Leadership(key, joined.header.revision)
        if not joined.succeeded:  # this session was in line already
            found = joined.responses[0].response_range.kvs[0]
            self.leadership = Leadership(key, found.create_revision)
            if found.value != (value.encode() if isinstance(value, str) else value):
                await self._proclaim_or_resign(value)
        try:
            await wait_for_turn(client, self.prefix, self.leadership.revision)
        except asyncio.CancelledError:
            await asyncio.shield(self.resign())
            raise
        except BaseException:
            self.leadership = None  # etcd: the key stays in line until the session ends
            raise
        self.header = joined.header

    # --8<-- [end:campaign]

    # --8<-- [start:proclaim]
    async def proclaim(self, value: Bytes) -> None:
        """Announce ``value`` as the leader's, if this session still leads.

        Raises:
            NotLeaderError: no leadership, or the key is gone or was created again since.
        """
        if self.leadership is None:
            raise NotLeaderError()
        key, revision = self.leadership.key, self.leadership.revision
        announced = await self.session.client.txn(
            [compare(key, "create", "=", revision)],
            [put_op(key, value, lease=self.session.lease_id)],
        )
        if not announced.succeeded:
            self.leadership = None
            raise NotLeaderError()
        self.header = announced.header

    # --8<-- [end:proclaim]

    async def resign(self) -> None:
        """Step down: delete the leader's key if it is still the one won. Resigning without
        a leadership, or one already lost, does nothing."""
        if self.leadership is None:
            return
        key, revision = self.leadership.key, self.leadership.revision
        self.leadership = None
        resigned = await self.session.client.txn(
            [compare(key, "create", "=", revision)], [delete_op(key)]
        )
        self.header = resigned.header

    async def leader(self) -> Leader:
        """Who leads now. Raises `NoLeaderError` if nobody does."""
        first = await first_in_line(self.session.client, self.prefix)
        if not first.kvs:
            raise NoLeaderError()
        return Leader(first.header, first.kvs[0])

    # --8<-- [start:observe]
    async def observe(self) -> AsyncGenerator[Leader, None]:
        """Every leader in turn, and every value each one proclaims, in revision order.

        Waits for a first leader if there is none; close the iterator to stop observing.

        Raises:
            LostWatchError: a watch ended early (the history it needed was compacted).
            EtcdError: a read or a watch failed (the member went away).
        """
        while True:
            leader = await self._current_or_next_leader()
            yield leader
            async with contextlib.aclosing(self._proclaims(leader)) as proclaims:
                async for proclaimed in proclaims:
                    yield proclaimed

    # --8<-- [end:observe]

    async def _current_or_next_leader(self) -> Leader:
        """The first key in line; if there is none, the first one put from then on."""
        client = self.session.client
        first = await first_in_line(client, self.prefix)
        if first.kvs:
            return Leader(first.header, first.kvs[0])
        watch = client.watch(
            self.prefix, prefix_end(self.prefix), start_revision=first.header.revision
        )
        try:
            async for reply in watch:
                for event in reply.events:
                    if event.type == kv_pb2.Event.PUT:
                        header = rpc_pb2.ResponseHeader()
                        header.CopyFrom(reply.header)
                        header.revision = event.kv.mod_revision  # the put's, not the batch's
                        return Leader(header, event.kv)
        finally:
            watch.close()
        raise LostWatchError()

    async def _proclaims(self, leader: Leader) -> AsyncGenerator[Leader, None]:
        """``leader``'s key as it is put again (each proclaim), until it is deleted."""
        watch = self.session.client.watch(leader.kv.key, start_revision=leader.header.revision + 1)
        try:
            async for reply in watch:
                for event in reply.events:
                    if event.type == kv_pb2.Event.DELETE:
                        return  # this leader's term is over
                    yield Leader(reply.header, event.kv)
        finally:
            watch.close()
        raise LostWatchError()

    async def _proclaim_or_resign(self, value: Bytes) -> None:
        try:
            await self.proclaim(value)
        except BaseException:
            await self.resign()
            raise
