"""How a Raft node is tuned: timeouts in ticks, message sizes, and etcd's optional rules."""

from __future__ import annotations

from dataclasses import dataclass

from kv.raft.messages import NONE
from kv.raft.read_only import ReadOnlyOption
from kv.raft.storage import NO_LIMIT


@dataclass(frozen=True, slots=True)
class Config:
    """The parameters of one node (etcd's ``raft.Config``).

    Time is counted in ticks: the application calls `kv.raft.node.RawNode.tick` at a fixed
    interval (etcd's ``--heartbeat-interval``, 100 ms by default), so ``heartbeat_tick=1`` and
    ``election_tick=10`` are etcd's 100 ms heartbeats and 1 s election timeout.
    """

    id: int
    #: Ticks a follower waits without hearing from a leader before it campaigns. The real
    #: timeout is drawn at random from [election_tick, 2 * election_tick) (Raft §5.2).
    election_tick: int = 10
    #: Ticks between a leader's heartbeats.
    heartbeat_tick: int = 1
    #: The last index the application applied (when restarting); nothing at or below it is
    #: handed out again.
    applied: int = 0
    #: Byte budget of the entries in one append message (etcd: 1 MiB).
    max_size_per_msg: int = 1024 * 1024
    #: Byte budget of the committed entries in one Ready.
    max_committed_size_per_ready: int = NO_LIMIT
    #: Unacknowledged append messages per follower in the REPLICATE state (etcd: 512).
    max_inflight_msgs: int = 512
    #: A leader steps down when it has not heard from a majority for an election timeout,
    #: and a follower that heard from its leader within that time ignores vote requests.
    #: etcd always runs with it on.
    check_quorum: bool = True
    #: PreVote (thesis §9.6): ask "would you vote for me?" before raising the term, so that a
    #: node rejoining after a partition does not depose a healthy leader. On in etcd 3.5
    #: (etcd 3.4's ``--pre-vote`` defaults to false).
    pre_vote: bool = True
    #: How ReadIndex confirms leadership: a heartbeat round (SAFE) or the lease.
    read_only_option: ReadOnlyOption = ReadOnlyOption.SAFE
    #: Followers drop proposals instead of forwarding them to the leader.
    disable_proposal_forwarding: bool = False

    def validate(self) -> None:
        """Raises ValueError for a configuration etcd would refuse."""
        if self.id == NONE:
            raise ValueError("cannot use none as id")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max inflight messages must be greater than 0")
        if self.read_only_option is ReadOnlyOption.LEASE_BASED and not self.check_quorum:
            raise ValueError(
                "CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased"
            )
