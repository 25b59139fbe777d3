"""`Timing`: a member's clock settings -- heartbeat, election timeout, lease checkpoints.

etcd's ``--heartbeat-interval`` and ``--election-timeout`` (chapter 4), and what follows
from them: the tick, the election timeout in ticks, how long a request may wait to be
applied, and the lessor a member keeps (chapter 7: its minimum TTL, the extension a new
leader grants every lease, ``--experimental-enable-lease-checkpoint``). Moved out of
`kv.server.replica.replica`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kv.lease import Checkpointing, Lessor, min_ttl


@dataclass(frozen=True, slots=True)
class Timing:
    """etcd's --heartbeat-interval and --election-timeout, in milliseconds; and how leases
    are checkpointed, if they are (chapter 7: --experimental-enable-lease-checkpoint)."""

    heartbeat_ms: int = 100
    election_ms: int = 1000
    lease_checkpointing: Checkpointing | None = None

    @property
    def tick_seconds(self) -> float:
        return self.heartbeat_ms / 1000

    @property
    def election_ticks(self) -> int:
        return self.election_ms // self.heartbeat_ms

    @property
    def request_timeout(self) -> float:
        """How long a request may wait to be applied (etcd: 5 s + 2 election timeouts)."""
        return 5.0 + 2 * self.election_ms / 1000

    @property
    def read_pace(self) -> float:
        """Seconds between two ReadIndex rounds while the member is busy: a tenth of the
        heartbeat interval, so that reads add at most ten heartbeat rounds to each one
        (`kv.server.replica.clients.reads`)."""
        return self.tick_seconds / 10

    @property
    def write_pace(self) -> float:
        """The most seconds between two Ready turns of a busy leader with many writes
        waiting (it starts sooner once writes stop arriving): a tenth of the heartbeat
        interval, as for reads, so that a write waits at most that much more for company
        (`kv.server.replica.pacing`)."""
        return self.tick_seconds / 10

    @property
    def lease_extension(self) -> float:
        """What a new leader adds to every lease's TTL: an election timeout, in whole ticks
        (etcd: ``Promote(electionTimeout())``; chapter 7)."""
        return self.election_ticks * self.heartbeat_ms / 1000

    def new_lessor(self) -> Lessor:
        """An empty lessor with this timing's minimum TTL and checkpointing; an expired lease
        whose revoke was lost is handed out again after a request timeout, as in etcd."""
        return Lessor(
            min_ttl(self.election_ms, self.heartbeat_ms),
            retry_seconds=self.request_timeout,
            checkpointing=self.lease_checkpointing,
        )
