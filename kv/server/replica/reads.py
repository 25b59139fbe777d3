"""Linearizable reads: ReadIndex rounds, batched as etcd batches them (chapter 4).

A read served from a member's store is linearizable only if the store has applied every
write acknowledged before the read arrived. Raft's ReadIndex (thesis §6.4) finds a point that
is late enough: the leader notes its commit index, confirms with a heartbeat round that it
still leads, and answers with that index; the read may go ahead once the member has applied
up to it. `kv.server.replica.proposals.Proposals.linearizable_read` does the waiting; this
module keeps the rounds.

One round serves many reads, but only reads that arrived *before* it was asked (etcd:
``linearizableReadLoop``). A read that arrives while a round is in flight waits for the
next one: the round in flight fixed its index before the read existed, and could miss a
write acknowledged in between. So at most two rounds matter at any time: the one in flight,
and the one the newcomers queue for, asked as soon as the first is answered.

Two things can go wrong with a round. Its request or answer can be lost (Raft drops a
ReadIndex while no leader is known): a round not answered within ``retry_after`` seconds is
asked again under a new context, for the same reads -- still asked after they all arrived,
so still safe. And the leader can change: the old leader's answer will not come, and etcd
tells the waiting reads "leader changed" rather than keep them waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from kv.server import errors
from kv.server.errors import EtcdError


def _retrieve(future: asyncio.Future[int]) -> None:
    """Mark a round's outcome as seen, so that a round whose readers all gave up does not
    log "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()


class ReadRounds:
    """The ReadIndex round in flight, and the one queued behind it."""

    def __init__(
        self,
        ask: Callable[[bytes], None],
        contexts: Iterator[int],
        now: Callable[[], float],
        retry_after: float,
    ) -> None:
        """``ask(context)`` sends a ReadIndex request to Raft; ``contexts`` gives unique
        request ids; ``now`` reads the event loop's clock."""
        self._ask = ask
        self._contexts = contexts
        self._now = now
        self._retry_after = retry_after
        self._queued: asyncio.Future[int] | None = None
        self._in_flight: asyncio.Future[int] | None = None
        self._asked_at = 0.0
        #: Every context asked for the round in flight (a retried round has several).
        self._asked: dict[bytes, asyncio.Future[int]] = {}

    # --8<-- [start:join]
    def join(self) -> asyncio.Future[int]:
        """The round a read arriving now is served by: resolves to the read index."""
        if self._queued is None:
            self._queued = asyncio.get_running_loop().create_future()
            self._queued.add_done_callback(_retrieve)
        round_ = self._queued
        self._start_queued()
        return round_

    def _start_queued(self) -> None:
        if self._in_flight is not None or self._queued is None:
            return
        self._in_flight, self._queued = self._queued, None
        self._ask_again()

    # --8<-- [end:join]

    def _ask_again(self) -> None:
        assert self._in_flight is not None
        context = next(self._contexts).to_bytes(8, "big")
        self._asked[context] = self._in_flight
        self._asked_at = self._now()
        self._ask(context)

    def answered(self, context: bytes, index: int) -> None:
        """Raft confirmed ``index`` for ``context`` (a `kv.raft.ReadState`)."""
        round_ = self._asked.get(context)
        if round_ is None or round_ is not self._in_flight:
            return  # an answer to a round already answered or given up
        round_.set_result(index)
        self._finish()

    def retry_if_lost(self) -> None:
        """Called on every tick: ask again for a round unanswered for too long."""
        if self._in_flight is not None and self._now() - self._asked_at > self._retry_after:
            self._ask_again()

    def leader_changed(self) -> None:
        """The round in flight will get no answer from the old leader."""
        if self._in_flight is not None:
            self._in_flight.set_exception(errors.LEADER_CHANGED)
            self._finish()

    def fail(self, error: EtcdError) -> None:
        """The member stops: every read waiting gets ``error``."""
        for round_ in (self._in_flight, self._queued):
            if round_ is not None and not round_.done():
                round_.set_exception(error)
        self._in_flight = self._queued = None
        self._asked.clear()

    def _finish(self) -> None:
        self._in_flight = None
        self._asked.clear()
        self._start_queued()
