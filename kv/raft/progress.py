"""What a leader knows about each follower's log, and how fast it may send to it.

Figure 2 gives the leader two numbers per follower: ``nextIndex`` (the next entry to send) and
``matchIndex`` (the highest entry known to be replicated there). etcd adds a small state
machine on top (``raft/tracker/progress.go``), because "send the next entries" means
different things depending on how much the leader knows:

===========  ==============================================================================
state        behaviour
===========  ==============================================================================
PROBE        The leader does not know where the follower's log ends. It sends one append at a
             time and waits for the answer (or the next heartbeat) before sending another;
             each rejection moves ``next`` back (Figure 2: "decrement nextIndex and retry").
REPLICATE    The follower is known to match up to ``match``. The leader streams appends
             optimistically (``next`` jumps past each batch it sends), up to
             ``max_inflight`` unacknowledged messages (`Inflights`).
SNAPSHOT     The follower needs entries the leader has compacted: a snapshot is on its way
             (Raft §7). Nothing else is sent until the follower acknowledges it.
===========  ==============================================================================

Transitions (the only ones there are)::

    PROBE     --append accepted-->       REPLICATE
    REPLICATE --append rejected-->       PROBE       (also when the peer is unreachable)
    PROBE/REPLICATE --entries compacted--> SNAPSHOT
    SNAPSHOT  --snapshot acknowledged/failed--> PROBE
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"

    def __str__(self) -> str:
        return f"State{self.value.capitalize()}"


# --8<-- [start:inflights]
class Inflights:
    """The appends sent to one follower and not yet acknowledged: a bounded FIFO of the last
    index each one carried (etcd: ``tracker/inflights.go``, a ring buffer there)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._last_indexes: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._last_indexes)

    def add(self, last_index: int) -> None:
        """Record an append whose last entry is ``last_index`` (indexes only increase)."""
        if self.full():
            raise AssertionError("cannot add into a full Inflights")
        self._last_indexes.append(last_index)

    def free_le(self, index: int) -> None:
        """The follower acknowledged everything up to ``index``: those appends have landed."""
        while self._last_indexes and self._last_indexes[0] <= index:
            self._last_indexes.popleft()

    def full(self) -> bool:
        return len(self._last_indexes) >= self.capacity

    def reset(self) -> None:
        self._last_indexes.clear()


# --8<-- [end:inflights]


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """A leader's view of one member, frozen: what `Progress` knows, for status displays."""

    match: int
    next: int
    state: ProgressState
    is_learner: bool
    recent_active: bool
    #: In SNAPSHOT: the index of the snapshot being sent.
    pending_snapshot: int = 0
    #: Appends sent and not yet acknowledged, and whether the window is full.
    inflight: int = 0
    inflight_full: bool = False

    def __str__(self) -> str:
        learner = " learner" if self.is_learner else ""
        snapshot = f" pending_snapshot={self.pending_snapshot}" if self.pending_snapshot else ""
        full = "[full]" if self.inflight_full else ""
        return (
            f"{self.state} match={self.match} next={self.next}{learner}{snapshot}"
            f" inflight={self.inflight}{full}"
        )


class Progress:
    """A leader's view of one follower (or learner, or of itself)."""

    def __init__(
        self, *, next_index: int, max_inflight: int, is_learner: bool = False, match: int = 0
    ) -> None:
        #: matchIndex: the highest entry known to be in the follower's log.
        self.match = match
        #: nextIndex: the next entry to send.
        self.next = next_index
        self.state = ProgressState.PROBE
        #: In SNAPSHOT: the index of the snapshot being sent.
        self.pending_snapshot = 0
        #: Did the follower answer since the last check-quorum round? (CheckQuorum)
        self.recent_active = False
        #: In PROBE: an append is in flight; wait for its answer or the next heartbeat.
        self.probe_sent = False
        self.inflights = Inflights(max_inflight)
        self.is_learner = is_learner

    def status(self) -> PeerStatus:
        """This view as a frozen value, for status displays (`kv.raft.node.Status`)."""
        return PeerStatus(
            match=self.match,
            next=self.next,
            state=self.state,
            is_learner=self.is_learner,
            recent_active=self.recent_active,
            pending_snapshot=self.pending_snapshot,
            inflight=len(self.inflights),
            inflight_full=self.inflights.full(),
        )

    def __repr__(self) -> str:
        return str(self.status())

    def _reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    # --8<-- [start:transitions]
    def become_probe(self) -> None:
        """Find where the follower's log ends, one append at a time."""
        if self.state is ProgressState.SNAPSHOT:
            # Sent a snapshot: the follower is either at the snapshot now or where it was.
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        """The follower matches up to ``match``: stream everything after it."""
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        """A snapshot up to ``snapshot_index`` is on its way; pause appends."""
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    # --8<-- [end:transitions]

    # --8<-- [start:acks]
    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged entries up to ``index``. Returns whether ``match`` grew."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def sent_entries(self, last_index: int | None) -> None:
        """An append went out; ``last_index`` is its last entry's index (None: it was empty)."""
        if self.state is ProgressState.REPLICATE:
            if last_index is not None:
                self.next = last_index + 1
                self.inflights.add(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    # --8<-- [end:acks]

    # --8<-- [start:maybe-decrease-to]
    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected the append that followed entry ``rejected``.

        ``match_hint`` is the highest index at which the logs may still match (from the
        follower's hint, see `kv.raft.log.RaftLog.find_conflict_by_term`). Returns False for a
        stale rejection (an answer to an append sent before the leader knew better), which
        must not move ``next`` backwards again.
        """
        if self.state is ProgressState.REPLICATE:
            # The rejection of an index at or below match is stale: match is known good.
            if rejected <= self.match:
                return False
            # Probe again right after match.
            self.next = self.match + 1
            return True
        # In PROBE only the answer to the latest probe (for next - 1) counts.
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    # --8<-- [end:maybe-decrease-to]

    # --8<-- [start:is-paused]
    def is_paused(self) -> bool:
        """Should the leader hold back appends to this follower for now?"""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    # --8<-- [end:is-paused]
