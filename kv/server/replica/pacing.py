"""Pacing a busy leader's Ready turns, so that each one carries more (chapter 4; issue 12).

Every Ready costs each member about the same, whatever it carries: a log write and a hop to
the fsync thread and back; an append to each follower, which decodes it, steps it, writes and
syncs its own log, and answers; the leader decodes and steps the answers; a backend commit. A
loop that takes a turn as soon as anything is ready hands out a Ready for every write or two
when the leader is short of CPU. The writes then reach the member one by one, at the rate its
event loop serves gRPC, and the loop takes a turn between any two of them. Most of the writes
wait in front of the member meanwhile, in gRPC's queues, where the loop cannot see them.

So a busy leader paces its turns, as `kv.server.replica.clients.reads` paces ReadIndex rounds:

* if many writes wait on the member (`MANY_WRITES`: proposed here and not yet answered) and
  the event loop is busy -- its thread ran for at least `BUSY_SHARE` of the time since the
  last turn began, or a callback waits more than ``BUSY_LAG_SECONDS`` to run -- the next
  turn waits while writes keep arriving. Meanwhile the loop serves gRPC, whose callbacks
  queue more writes, and the peers' frames, and the turn takes them all: one log write, one
  fsync, one append to each follower, one backend commit;
* it looks every ``pace / GATHER_STEPS`` whether writes still arrive, and starts after a
  look that found none new, once it has `ENOUGH_WRITES`: the writes still to come are then
  those the turn itself will answer, and waiting longer would gather nothing. (A fixed pace
  left a member with a fast disk idle until the timer rang: on one member, a turn every
  10 ms whatever arrived, the event loop short of a whole core.) It starts no later than
  ``pace`` after the last turn began, however many arrive;
* otherwise the turn starts at once: a lone write, or a few, waits for no timer; nor does a
  follower (its turns follow the leader's appends, one per frame).

A paced turn costs a write at most ``pace`` more inside the member, and less in all: under
that load the writes queue in front of the member anyway, and what the loop saves per write
lets it serve them sooner. etcd needs no pacing: Go runs the gRPC handlers on other cores
while its Raft goroutine writes and syncs, so its Readys fill up by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kv.server.replica.clients.reads import BUSY_LAG_SECONDS

#: Writes are many when at least this many wait on the member. Fewer are one client, or two
#: or three, whose writes are all in the member already: waiting would gather nothing more.
MANY_WRITES = 4
#: The event loop is busy when its thread ran for at least this share of the time since the
#: last turn began: the rest of the time it waited for the disk, the peers or the clients.
BUSY_SHARE = 0.5
#: A paced turn gathers at least this many writes, if they come within the pace: etcd's
#: Readys carry about 9-16 writes per fsync under this load (issue 12 asks for 8 or more).
ENOUGH_WRITES = 8
#: A paced turn looks this many times per pace whether writes still arrive.
GATHER_STEPS = 10


class TurnPacing:
    """When the Ready loop's next turn may start."""

    def __init__(
        self,
        pace: float,
        *,
        now: Callable[[], float],
        cpu: Callable[[], float],
        waiting: Callable[[], int],
        gathered: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Turns up to ``pace`` seconds apart while the loop is busy, ``waiting()`` writes
        are many and ``gathered()``, the writes queued for the next turn, still grows;
        ``now`` reads the monotonic clock, ``cpu`` the CPU time of the event loop's thread;
        ``sleep`` waits (asyncio's, but for tests)."""
        self._pace = pace
        self._now = now
        self._cpu = cpu
        self._waiting = waiting
        self._gathered = gathered
        self._sleep = sleep
        self._started = -pace
        self._cpu_at_start = 0.0

    async def next_turn(self) -> None:
        """Return when the next turn may start, and count it as started."""
        since = self._now() - self._started
        if since < self._pace and self._waiting() >= MANY_WRITES and await self._busy(since):
            await self._gather()
        self._started = self._now()
        self._cpu_at_start = self._cpu()

    async def _busy(self, since: float) -> bool:
        """Did the event loop's thread run for most of the time since the last turn began,
        or does a callback wait long to run?"""
        if self._cpu() - self._cpu_at_start >= BUSY_SHARE * since:
            return True
        probed = self._now()
        await self._sleep(0)  # the loop runs what is ready before this returns
        return self._now() - probed > BUSY_LAG_SECONDS

    async def _gather(self) -> None:
        """Wait until writes stop arriving, once there are enough of them, and no later than
        ``pace`` after the last turn began."""
        deadline = self._started + self._pace
        step = self._pace / GATHER_STEPS
        gathered = self._gathered()
        while (left := deadline - self._now()) > 0:
            await self._sleep(min(step, left))
            before, gathered = gathered, self._gathered()
            if gathered <= before and gathered >= ENOUGH_WRITES:
                return  # nothing new: the rest come back once this turn answers them
