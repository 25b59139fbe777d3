"""The clients' side of a replica: writes, membership changes and reads that wait on its Raft
loop (chapter 4).

A client's request does not run inside the Ready loop. It queues a proposal (or joins a
ReadIndex round), wakes the loop, and waits. The loop comes back to it only through this
class: when it steps the queued proposals into the core, all together (`step_queued`), when
it applies the entry that carries the request's id (`written`, `conf_changed`),
when a Ready answers a ReadIndex round (`read_index`), when the applied index moves on
(`applied_to`), at each tick (`ticked`), when the leader changes (`leader_changed`), and when
the member stops (`fail`).

A write proposed on a follower is forwarded by the core to the leader (a MsgProp); the follower
answers its client when it applies the entry, recognising it by its request id (etcd's
``wait.Wait``, `kv.server.replica.clients.waiters`).

Linearizable reads use ReadIndex (Raft thesis §6.4): the read waits until the leader has
confirmed it still leads *and* this member has applied up to the leader's commit index at
that moment. Reads are batched: one ReadIndex round serves every read that arrived before
it started (etcd: ``linearizableReadLoop``, `kv.server.replica.clients.reads`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.raft import (
    ConfChange,
    Entry,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    Role,
)
from kv.server import errors
from kv.server.applied.state_machine import Result
from kv.server.errors import EtcdError
from kv.server.replica.clients.reads import ReadRounds
from kv.server.replica.clients.waiters import Deadlines, IndexWaiters, Waiters, request_ids

if TYPE_CHECKING:  # the replica builds this class: no import cycle at run time
    from kv.server.replica.timing import Timing


class Proposals:
    """What clients ask of one member's Raft loop, and their waiting for it."""

    def __init__(
        self,
        raw: RawNode,
        timing: Timing,
        *,
        wake: Callable[[], None],
        check_serving: Callable[[], None],
        applied: Callable[[], int],
    ) -> None:
        """Proposals to ``raw``, timed out by ``timing``; ``wake()`` wakes the Ready loop,
        ``check_serving()`` raises etcd's error on a member that takes no more requests, and
        ``applied()`` reads the index of the last entry applied."""
        self.raw = raw
        self.timing = timing
        self._wake = wake
        self._check_serving = check_serving
        self._applied = applied
        self._request_ids = request_ids(raw.id, time.time())
        self._writes: Waiters[Result] = Waiters()
        #: Writes proposed since the loop's last turn, by request id: `step_queued` hands
        #: them to the core together.
        self._queued: list[tuple[int, bytes]] = []
        self._conf_changes: Waiters[None] = Waiters()
        self._applied_waiters = IndexWaiters()
        #: The deadlines of the writes and reads waiting here (etcd's request timeout).
        self._deadlines = Deadlines()
        self.reads = ReadRounds(
            ask=self._ask_read_index,
            contexts=self._request_ids,  # etcd uses its request ids as contexts too
            now=lambda: asyncio.get_running_loop().time(),
            retry_after=2 * timing.tick_seconds,
            pace=timing.read_pace,
        )
        self._last_leader_change = 0.0
        #: Whether this member leads alone, as found in the term `_lone_voter_term` (-1: not
        #: found in this configuration yet).
        self._lone = False
        self._lone_voter_term = -1
        #: Proposals that failed: dropped, timed out (etcd_server_proposals_failed_total).
        self.failed = 0

    @property
    def pending(self) -> int:
        """Writes proposed here and not applied yet (etcd_server_proposals_pending)."""
        return len(self._writes)

    @property
    def queued(self) -> int:
        """How many writes wait for the loop's next turn (`step_queued`)?"""
        return len(self._queued)

    def next_request_id(self) -> int:
        """The member's next request ID (etcd's ``reqIDGen``; lease IDs come from it too)."""
        return next(self._request_ids)

    # --8<-- [start:propose]
    async def propose(self, request: InternalRaftRequest) -> Result:
        """Replicate ``request`` and return what applying it gave; raise etcd's error when it
        cannot be proposed, or is not applied within the request timeout."""
        self._check_serving()
        deadline = self._deadline()
        if not self.raw.lead:  # asked here first: most writes find a leader, and no wait
            await self._wait_for_leader(deadline)
        request_id = next(self._request_ids)
        request.header.ID = request_id
        future = self._writes.register(request_id)
        self._deadlines.add(future, deadline, self._write_timed_out)
        self._queued.append((request_id, request.SerializeToString()))
        self._wake()  # the loop steps it into the core with the others (`step_queued`)
        try:
            return await future
        finally:
            self._writes.forget(request_id)

    async def _wait_for_leader(self, deadline: float) -> None:
        """Hold a proposal until some leader is known, as etcd 3.4 does (its Raft node does
        not take proposals while there is none); past the deadline, etcd's client sees its
        context's error."""
        loop = asyncio.get_running_loop()
        while not self.raw.lead:
            if loop.time() >= deadline:
                raise errors.DEADLINE_EXCEEDED
            await asyncio.sleep(self.timing.tick_seconds)
            self._check_serving()

    def step_queued(self) -> None:
        """Hand the core every write queued since the last call, as one proposal message.

        The Ready loop calls this before it asks for a Ready. Proposed one by one, each write
        would make the leader send its own append to every follower, and each follower its
        own answer; proposed together, the writes that arrived while the loop was busy (its
        fsync, say) cost one append per follower and one answer each, and go into one Ready:
        one log write, one fsync, one backend commit. The core takes a proposal of many
        entries as it takes one (etcd's ``MsgProp`` carries a list).
        """
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        entries = tuple(Entry(data=data) for _, data in queued)
        try:
            self.raw.step(Message(type=MessageType.PROP, from_=self.raw.id, entries=entries))
        except ProposalDroppedError:
            self.failed += len(queued)
            for request_id, _ in queued:
                self._writes.fail_one(request_id, errors.PROPOSAL_DROPPED)

    # --8<-- [end:propose]

    def _deadline(self) -> float:
        """When a request asked now times out (event loop time)."""
        return asyncio.get_running_loop().time() + self.timing.request_timeout

    def _write_timed_out(self) -> EtcdError:
        self.failed += 1
        return self._timeout_error()

    def _timeout_error(self) -> EtcdError:
        """etcd tells a client whose request timed out soon after a leader change why."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_leader_change < 3 * self.timing.election_ms / 1000:
            return errors.TIMEOUT_DUE_TO_LEADER_FAIL
        return errors.TIMEOUT

    async def propose_conf_change(self, change: ConfChange) -> None:
        """Replicate a membership change; return once it is applied here."""
        self._check_serving()
        change_id = next(self._request_ids)
        change = ConfChange(change.type, change.node_id, change.context, id=change_id)
        future = self._conf_changes.register(change_id)
        try:
            self.raw.propose_conf_change(change)
        except ProposalDroppedError as error:
            self._conf_changes.forget(change_id)
            raise errors.PROPOSAL_DROPPED from error
        self._wake()
        self._deadlines.add(future, self._deadline(), self._timeout_error)
        try:
            await future
        finally:
            self._conf_changes.forget(change_id)

    # --8<-- [start:read_index]
    async def linearizable_read(self) -> None:
        """Wait until a read served now would be linearizable (Raft thesis §6.4).

        The read joins the next ReadIndex round (`kv.server.replica.clients.reads`); the round's
        index comes back in a Ready's ``read_states``, and the read goes ahead once this
        member applied that far. A leader that is the only voter needs no round: its
        commit index is the cluster's (etcd's Raft answers such a ReadIndex at once). A read
        still waiting at the request timeout fails with etcd's "request timed out".
        """
        self._check_serving()
        deadline = self._deadline()
        if self._lone_voter():
            await self._applied_by(self.raw.commit_index, deadline)
            return
        reader = self.reads.join()
        self._deadlines.add(reader, deadline, _read_timed_out)
        try:
            index = await reader
        finally:
            self.reads.done(reader)  # the next round waits for this round's reads
        await self._applied_by(index, deadline)

    def _ask_read_index(self, context: bytes) -> None:
        self.raw.read_index(context)
        self._wake()

    # --8<-- [end:read_index]

    def _lone_voter(self) -> bool:
        """Is this member the leader, and the only voter (a ReadIndex round would ask no one)?"""
        raw = self.raw
        if raw.role is not Role.LEADER:
            return False
        # Asked once per term and configuration, not per read: within its term a leader's
        # voters change only by a configuration change it applies (`conf_changed`).
        if self._lone_voter_term != raw.term:
            self._lone = raw.conf_state().voters == (raw.id,)
            self._lone_voter_term = raw.term
        return self._lone

    async def _applied_by(self, index: int, deadline: float) -> None:
        """Return once this member has applied the entry at ``index``; fail with etcd's
        timeout at ``deadline``."""
        if self._applied() < index:
            future = self._applied_waiters.register(index)
            self._deadlines.add(future, deadline, _read_timed_out)
            await future

    # -- what the Ready loop tells the clients ------------------------------------------

    def written(self, request_id: int, result: Result) -> None:
        """The entry proposed as ``request_id`` was applied with ``result``."""
        self._writes.trigger(request_id, result)

    def conf_changed(self, change_id: int) -> None:
        """The membership change proposed as ``change_id`` was applied."""
        self._conf_changes.trigger(change_id, None)
        self._lone_voter_term = -1  # the voters may have changed: ask again

    def read_index(self, context: bytes, index: int) -> None:
        """A Ready answered the ReadIndex round asked as ``context`` with ``index``."""
        self.reads.answered(context, index)

    def ticked(self) -> None:
        """A tick passed: a ReadIndex round that got no answer in time is asked again."""
        self.reads.retry_if_lost()
        self._deadlines.forget_done()

    def applied_to(self, applied: int) -> None:
        """Entries up to ``applied`` are applied here."""
        self._applied_waiters.reached(applied)

    def leader_changed(self) -> None:
        """The leader changed or was lost: fail the reads waiting for the old leader's
        ReadIndex answer, and remember when (a request that times out soon after says why)."""
        self._last_leader_change = asyncio.get_running_loop().time()
        self.reads.leader_changed()

    def fail(self, error: EtcdError) -> None:
        """The member stopped taking requests: every waiting client gets ``error``."""
        self._queued.clear()
        self.reads.fail(error)
        self._writes.fail(error)
        self._conf_changes.fail(error)
        self._applied_waiters.fail(error)
        self._deadlines.clear()


def _read_timed_out() -> EtcdError:
    return errors.TIMEOUT
