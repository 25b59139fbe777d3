"""A schedule of lease IDs by time: the leader's to-do list for its leases (chapter 7).

The leader's lessor keeps two of them: when to look at a lease for expiry
(`kv.lease.Lessor.expired`) and when to checkpoint it (`kv.lease.Lessor.due_checkpoints`).
Both want the soonest time first and both move a lease's time often (every keep-alive moves
its deadline), so a `Schedule` is a heap with *lazy deletion*: scheduling an ID again pushes a
new entry and remembers only the newest time; an entry whose time is not the remembered one
is stale and skipped when it comes up. Nothing is ever searched for in the heap.

etcd keeps a plain heap per purpose (``lease/lease_queue.go``) and lets a lease appear in its
checkpoint heap more than once; kv's newest-time-wins rule keeps one checkpoint chain per lease
(`kv.lease.checkpoint` says what that changes: nothing a client can see).
"""

from __future__ import annotations

import heapq


class Schedule:
    """Lease IDs, each with one time; `pop_due` hands them out, the soonest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._time: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._time)

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._time

    def set(self, lease_id: int, when: float) -> None:
        """Schedule ``lease_id`` at ``when``, replacing any time it had."""
        self._time[lease_id] = when
        heapq.heappush(self._heap, (when, lease_id))

    def discard(self, lease_id: int) -> None:
        """Unschedule ``lease_id``, if it was scheduled."""
        self._time.pop(lease_id, None)

    def clear(self) -> None:
        self._heap.clear()
        self._time.clear()

    def pop_due(self, now: float) -> int | None:
        """Unschedule and return the ID whose time is soonest, if that time is not after
        ``now``; None if no ID is due."""
        while self._heap:
            when, lease_id = self._heap[0]
            if self._time.get(lease_id) != when:  # rescheduled or discarded since: stale
                heapq.heappop(self._heap)
                continue
            if when > now:
                return None
            heapq.heappop(self._heap)
            del self._time[lease_id]
            return lease_id
        return None
