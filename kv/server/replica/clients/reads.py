"""Linearizable reads: ReadIndex rounds, batched as etcd batches them (chapter 4).

A read served from a member's store is linearizable only if the store has applied every
write acknowledged before the read arrived. Raft's ReadIndex (thesis §6.4) finds a point that
is late enough: the leader notes its commit index, confirms with a heartbeat round that it
still leads, and answers with that index; the read may go ahead once the member has applied
up to it. `kv.server.replica.clients.proposals.Proposals.linearizable_read` does the waiting; this
module keeps the rounds.

One round serves many reads, but only reads that arrived *before* it was asked (etcd:
``linearizableReadLoop``). A read that arrives while a round is in flight waits for the
next one: the round in flight fixed its index before the read existed, and could miss a
write acknowledged in between. So at most two rounds matter at any time: the one in flight,
and the one the newcomers queue for.

When the next round is asked is kv's own choice, made for a member short of CPU. etcd's loop
asks again as soon as it has released the last round's reads. A round costs kv's leader a
heartbeat to every follower and their answers, a few reads' worth of CPU; and under load the
reads reach kv one by one, at the rate the member serves them (the rest wait in gRPC's queues,
out of sight). Rounds asked back to back then follow each other as fast as the followers
answer, each serving a read or two, and the leader spends more on rounds than on reads. So:

* the next round waits until the last round's reads are served (`done`), which on one thread
  is the same work as etcd's release;
* if the event loop is busy (a callback waits more than `BUSY_LAG_SECONDS` to run) and the
  reads are many (`MANY_READS` wait, or the last round served as many), the next round is
  asked no sooner than ``pace`` after the last one (a tenth of the heartbeat interval),
  gathering the reads that arrive meanwhile: under load a round serves several times more;
* otherwise it is asked at once, so a lone client, or a few, wait for no timer (pacing a
  handful of clients would only make each of them wait).

Two things can go wrong with a round. Its request or answer can be lost (Raft drops a
ReadIndex while no leader is known): a round not answered within ``retry_after`` seconds is
asked again under a new context, for the same reads -- still asked after they all arrived,
so still safe. And the leader can change: the old leader's answer will not come, and etcd
tells the waiting reads "leader changed" rather than keep them waiting.

Each read waits on a future of its own, so that one read giving up (its client gone, its
deadline passed) never cancels the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from kv.server import errors
from kv.server.errors import EtcdError

#: A read waiting for a round: resolves to the read index, or raises why there is none.
Reader = asyncio.Future[int]
#: The event loop is busy when a callback waits longer than this to run: more than about
#: one read's worth of work (a Range costs a member a few tenths of a millisecond) is
#: queued ahead of it.
BUSY_LAG_SECONDS = 0.0003
#: Reads are many when a round serves at least this many (more than a round costs the leader,
#: a heartbeat to each follower and their answers, in reads' worth of CPU): only then is it
#: worth making them wait for company. Measured on a 3-member cluster, 64 reads in flight,
#: against 6: a quarter less of the leader's CPU per read, half the followers' (fewer
#: heartbeat rounds per read).
MANY_READS = 3


class ReadRounds:
    """The ReadIndex round in flight, the reads queued behind it, and those being served."""

    def __init__(
        self,
        ask: Callable[[bytes], None],
        contexts: Iterator[int],
        now: Callable[[], float],
        retry_after: float,
        pace: float = 0.0,
    ) -> None:
        """``ask(context)`` sends a ReadIndex request to Raft; ``contexts`` gives unique
        request ids; ``now`` reads the event loop's clock. While the event loop is busy, a
        round is asked no sooner than ``pace`` seconds after the one before."""
        self._ask = ask
        self._contexts = contexts
        self._now = now
        self._retry_after = retry_after
        self._pace = pace
        #: The reads that arrived since the round in flight was asked.
        self._queued: list[Reader] = []
        #: The reads of the round in flight; None when no round is in flight.
        self._in_flight: list[Reader] | None = None
        #: Reads released by the last round that are not served yet (see `done`).
        self._serving: set[Reader] = set()
        #: The callback that will ask for the queued reads (a probe of the loop, or a timer).
        self._next: asyncio.Handle | None = None
        self._asked_at = -pace
        #: How many reads the last round answered was asked for.
        self._last_size = 0
        #: Every context asked for the round in flight (a retried round has several).
        self._asked: set[bytes] = set()

    # --8<-- [start:join]
    def join(self) -> Reader:
        """Wait for the next round: the future resolves to the read index. Call `done` with
        it once the read is served (or gives up)."""
        reader: Reader = asyncio.get_running_loop().create_future()
        self._queued.append(reader)
        self._next_round()
        return reader

    def done(self, reader: Reader) -> None:
        """``reader`` is served, or gave up: once every read of the last round is, the reads
        that queued meanwhile get their round."""
        self._serving.discard(reader)
        self._next_round()

    def _next_round(self) -> None:
        """Ask for the queued reads once no round is in flight and the last one's reads are
        served: at once if the last round is ``pace`` old, else after a look at the loop."""
        if self._in_flight is not None or self._serving or not self._queued or self._next:
            return
        if self._now() - self._asked_at >= self._pace:
            self._start_queued()
        else:
            self._next = asyncio.get_running_loop().call_soon(self._probed, self._now())

    def _start_queued(self) -> None:
        self._in_flight, self._queued = self._queued, []
        self._ask_again()

    # --8<-- [end:join]

    def _probed(self, scheduled: float) -> None:
        """The loop came round to this callback: if it took long, the loop is busy serving;
        if the reads are many too, the queued ones wait until the last round is ``pace`` old,
        gathering others."""
        self._next = None
        now = self._now()
        wait = self._asked_at + self._pace - now
        many = max(len(self._queued), self._last_size) >= MANY_READS
        if now - scheduled > BUSY_LAG_SECONDS and many and wait > 0:
            self._next = asyncio.get_running_loop().call_later(wait, self._paced)
        else:
            self._paced()

    def _paced(self) -> None:
        self._next = None
        if self._in_flight is None and not self._serving and self._queued:
            self._start_queued()

    def _ask_again(self) -> None:
        context = next(self._contexts).to_bytes(8, "big")
        self._asked.add(context)
        self._asked_at = self._now()
        self._ask(context)

    def answered(self, context: bytes, index: int) -> None:
        """Raft confirmed ``index`` for ``context`` (a `kv.raft.ReadState`): release the
        round's reads together."""
        if self._in_flight is None or context not in self._asked:
            return  # an answer to a round already answered or given up
        for reader in self._in_flight:
            if not reader.done():  # a reader that gave up was cancelled
                reader.set_result(index)
                self._serving.add(reader)
        self._last_size = len(self._in_flight)
        self._finish()

    def retry_if_lost(self) -> None:
        """Called on every tick: ask again for a round unanswered for too long."""
        if self._in_flight is not None and self._now() - self._asked_at > self._retry_after:
            self._ask_again()

    def leader_changed(self) -> None:
        """The round in flight will get no answer from the old leader."""
        if self._in_flight is not None:
            _fail(self._in_flight, errors.LEADER_CHANGED)
            self._finish()

    def fail(self, error: EtcdError) -> None:
        """The member stops: every read waiting gets ``error``."""
        _fail(self._in_flight or [], error)
        _fail(self._queued, error)
        self._in_flight, self._queued = None, []
        if self._next is not None:
            self._next.cancel()
            self._next = None
        self._serving.clear()
        self._asked.clear()

    def _finish(self) -> None:
        self._in_flight = None
        self._asked.clear()
        self._next_round()


def _fail(readers: list[Reader], error: EtcdError) -> None:
    for reader in readers:
        if not reader.done():
            reader.set_exception(error)
