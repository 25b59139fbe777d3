"""How a simulated cluster is tuned: its clocks, its disks, its network, its clients.

Every duration is in virtual milliseconds. The defaults are etcd's where etcd has one
(``--heartbeat-interval`` 100 ms, ``--election-timeout`` 1000 ms, PreVote and CheckQuorum on)
and a quiet LAN otherwise: messages take 1-10 ms, an fsync 1-3 ms, nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from kv.lease import Lessor, min_ttl
from kv.raft import Config, ReadOnlyOption


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """How the network between the members behaves (it can be changed while running).

    Each message is delivered after a delay drawn uniformly from ``delay_ms`` (inclusive), so
    a wide range reorders messages; it is lost with probability ``drop_rate`` and delivered
    twice (each copy with its own delay) with probability ``duplicate_rate``.
    """

    delay_ms: tuple[int, int] = (1, 10)
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    #: Duplicate forwarded proposals (MsgProp) too. Off by default: a proposal is a client's
    #: request riding on the Raft transport, not a Raft message, and etcd's transport (a TCP
    #: stream) never delivers one twice; a duplicated proposal is appended twice and applied
    #: twice, which no Raft rule prevents (the put is simply done again, later).
    duplicate_proposals: bool = False

    def __post_init__(self) -> None:
        low, high = self.delay_ms
        if not 0 <= low <= high:
            raise ValueError(f"delay_ms must be (low, high) with 0 <= low <= high: {self.delay_ms}")
        for name in ("drop_rate", "duplicate_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1: {rate}")

    def __str__(self) -> str:
        parts = [f"delay {self.delay_ms[0]}-{self.delay_ms[1]}ms"]
        if self.drop_rate:
            parts.append(f"drop {self.drop_rate:.0%}")
        if self.duplicate_rate:
            parts.append(f"duplicate {self.duplicate_rate:.0%}")
        if self.duplicate_proposals:
            parts.append("proposals too")
        return ", ".join(parts)


#: A network that loses, duplicates and reorders (6.824's "unreliable": long delays too).
UNRELIABLE = NetworkConfig(delay_ms=(1, 150), drop_rate=0.1, duplicate_rate=0.05)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulated cluster's parameters."""

    #: One Raft tick, etcd's ``--heartbeat-interval``.
    tick_ms: int = 100
    #: Raft's timeouts in ticks (`kv.raft.Config`): 10 ticks is etcd's 1000 ms election timeout.
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    read_only_option: ReadOnlyOption = ReadOnlyOption.SAFE
    #: Byte budget of one append message (`kv.raft.Config`; etcd 1 MiB). A tiny budget sends
    #: one entry per message, so that followers acknowledge a new leader's log piece by piece
    #: -- the situation of Figure 8, where an old entry sits on a majority before the new
    #: leader's own entry does.
    max_size_per_msg: int = 1024 * 1024
    #: Append messages in flight per follower (`kv.raft.Config`; etcd 512).
    max_inflight_msgs: int = 512
    #: How long persisting one Ready takes (drawn uniformly, inclusive). A crash while a Ready
    #: is being written loses that write.
    disk_ms: tuple[int, int] = (1, 3)
    #: A crash mid-write leaves a random prefix of the write on disk, as a write-ahead log
    #: does (etcd's WAL writes the entries, then the hard state, and a torn tail is cut off
    #: at restart): some of the entries, and the hard state only if all entries made it.
    #: Off: a crash loses the whole write.
    torn_writes: bool = True
    #: Snapshot the state machine every this many applied entries and compact the log behind
    #: it (etcd's ``--snapshot-count``, 100000); 0: never. Small values make the leader send
    #: snapshots (MsgSnap) to members that fell behind the compaction.
    snapshot_every: int = 0
    #: Entries kept in the log behind a snapshot, for followers a little behind (etcd's
    #: ``SnapshotCatchUpEntries``, 5000).
    snapshot_keep: int = 5
    #: The network between the members at the start.
    network: NetworkConfig = NetworkConfig()
    #: One way between a client and the member it talks to (that link never fails; a crashed
    #: member simply does not answer).
    client_delay_ms: tuple[int, int] = (1, 5)
    #: A client gives up on a request after this long; the request's outcome is then unknown.
    request_timeout_ms: int = 3000
    #: How long a client waits before trying again after a member refused its request at once
    #: (no leader known, or the member is down and refuses the connection).
    retry_backoff_ms: int = 50
    #: A member that was asked for a linearizable read asks Raft again (ReadIndex) this often
    #: until it gets an answer (etcd 3.5: ``readIndexRetryTime``, 500 ms; here one tick).
    read_retry_ms: int = 100

    def __post_init__(self) -> None:
        if self.tick_ms <= 0:
            raise ValueError("tick_ms must be positive")
        low, high = self.disk_ms
        if not 0 <= low <= high:
            raise ValueError(f"disk_ms must be (low, high) with 0 <= low <= high: {self.disk_ms}")
        low, high = self.client_delay_ms
        if not 0 <= low <= high:
            raise ValueError(f"client_delay_ms must be (low, high): {self.client_delay_ms}")

    def changes(self) -> str:
        """The fields that differ from the defaults, ``name=value, ...`` (for replay hints)."""
        default = SimConfig()
        return ", ".join(
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        )

    @property
    def election_timeout_ms(self) -> int:
        """The shortest election timeout (Raft draws it from [this, twice this))."""
        return self.election_tick * self.tick_ms

    @property
    def lease_extension_ms(self) -> int:
        """What a new leader adds to every lease's TTL: an election timeout (etcd's
        ``Promote(electionTimeout)``; chapter 7)."""
        return self.election_timeout_ms

    @property
    def lease_min_ttl(self) -> int:
        """The shortest TTL a lease is granted, in seconds (`kv.lease.min_ttl`; chapter 7)."""
        return min_ttl(self.election_timeout_ms, self.tick_ms)

    def new_lessor(self) -> Lessor:
        """An empty lessor with this timing's minimum TTL (chapter 7); an expired lease whose
        revoke was lost is handed out again after a request timeout, as in etcd."""
        return Lessor(self.lease_min_ttl, retry_seconds=self.request_timeout_ms / 1000)

    def raft_config(self, node_id: int) -> Config:
        """The `kv.raft.Config` of member ``node_id``."""
        return Config(
            id=node_id,
            election_tick=self.election_tick,
            heartbeat_tick=self.heartbeat_tick,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            read_only_option=self.read_only_option,
            max_size_per_msg=self.max_size_per_msg,
            max_inflight_msgs=self.max_inflight_msgs,
        )
