"""The names of a node's roles and campaigns (chapter 3), shared by the role modules.

`kv.raft.raft` changes roles and runs elections; `kv.raft.follower` and `kv.raft.leader`
handle each role's messages. The follower's side needs these names too (a snapshot is
installed only as a follower; MsgTimeoutNow starts a transfer campaign), so they live here,
where every role module can import them without importing `kv.raft.raft`, which imports the
role modules.
"""

from __future__ import annotations

import enum


class Role(enum.Enum):
    """A node's role (Figure 4, plus etcd's pre-candidate for PreVote)."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"

    def __str__(self) -> str:
        return self.value


class CampaignType(enum.Enum):
    PRE_ELECTION = "CampaignPreElection"  # PreVote's first phase
    ELECTION = "CampaignElection"  # a normal election
    TRANSFER = "CampaignTransfer"  # an election asked for by the leader (MsgTimeoutNow)
