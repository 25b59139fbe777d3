"""The follower's side of Raft: taking the leader's appends, heartbeats and snapshots.

Theory of operation
-------------------
A follower is passive (Raft §5.1): it answers the leader and forwards what only the leader
may decide. Everything from the leader (`FROM_LEADER`) first restarts its election timer --
the leader is alive -- and then:

* **Appends** (`handle_append_entries`): the consistency check of Figure 2's AppendEntries;
  on a mismatch the answer hints where the logs may match (Raft §5.3), so the leader skips a
  whole divergent term per round trip.
* **Heartbeats** (`handle_heartbeat`): advance the commit index to what the leader says this
  follower holds, and echo the heartbeat's context (ReadIndex counts the echoes).
* **Snapshots** (`handle_snapshot`, `restore`): InstallSnapshot (Raft §7), when the leader
  compacted the entries this follower misses.

Proposals, ReadIndex requests and transfer requests go to the leader (`propose`,
`forward_if_leader`); the leader's MsgTimeoutNow makes the follower campaign at once (thesis
§3.10). A candidate that hears from the winner of its term becomes a follower and handles the
message the same way (`FROM_LEADER`). Every function here takes the `kv.raft.raft.Raft` it
works on, like etcd's ``stepFollower(r, m)``; the `kv.raft.raft.Raft.step` dispatch calls them
through `HANDLERS` while the node is a follower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from kv.raft import events as ev
from kv.raft.messages import NONE, Message, MessageType, Snapshot
from kv.raft.read_only import ReadState
from kv.raft.roles import CampaignType, Role

if TYPE_CHECKING:
    from kv.raft.raft import Raft

M = MessageType


# -- what only the leader decides ---------------------------------------------------------


# --8<-- [start:follower-propose]
def forward_to_leader(raft: Raft, m: Message) -> None:
    raft.send(replace(m, to=raft.lead))


def propose(raft: Raft, m: Message) -> None:
    if raft.lead == NONE:
        raft.drop_proposal("no leader")
    if raft.config.disable_proposal_forwarding:
        raft.drop_proposal("proposal forwarding is disabled")
    forward_to_leader(raft, m)


# --8<-- [end:follower-propose]


def forward_if_leader(raft: Raft, m: Message) -> None:
    """MsgTransferLeader, MsgReadIndex: the leader decides; without one, drop it."""
    if raft.lead != NONE:
        forward_to_leader(raft, m)


def timeout_now(raft: Raft, m: Message) -> None:
    # A transfer skips PreVote: the leader asked for it, nothing is partitioned.
    raft.hup(CampaignType.TRANSFER)


def read_index_response(raft: Raft, m: Message) -> None:
    if len(m.entries) == 1:
        raft.read_states.append(ReadState(index=m.index, request_ctx=m.entries[0].data))


# -- from the leader ----------------------------------------------------------------------


# --8<-- [start:from-leader]
def from_leader(raft: Raft, m: Message) -> None:
    """MsgApp, MsgHeartbeat, MsgSnap: the leader is alive; restart the election timer."""
    raft.election_elapsed = 0
    raft.lead = m.from_
    FROM_LEADER[m.type](raft, m)


# --8<-- [end:from-leader]


# --8<-- [start:append-entries]
def handle_append_entries(raft: Raft, m: Message) -> None:
    """AppendEntries, receiver implementation (Figure 2).

    On a mismatch the follower does not just say "false": it hints where the logs may
    match, so the leader can skip a whole divergent term per round trip instead of one
    entry (Raft §5.3, the optimization the paper sketches; etcd does it both ways).
    """
    if m.index < raft.log.committed:
        # Everything up to our commit index is known to match; say so.
        raft.send(Message(type=M.APP_RESP, to=m.from_, index=raft.log.committed))
        return
    last_new = raft.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
    if last_new is not None:
        raft.send(Message(type=M.APP_RESP, to=m.from_, index=last_new))
        return
    hint_index = min(m.index, raft.log.last_index())
    hint_index, hint_term = raft.log.find_conflict_by_term(hint_index, m.log_term)
    raft.send(
        Message(
            type=M.APP_RESP,
            to=m.from_,
            index=m.index,
            reject=True,
            reject_hint=hint_index,
            log_term=hint_term,
        )
    )


# --8<-- [end:append-entries]


# --8<-- [start:handle-heartbeat]
def handle_heartbeat(raft: Raft, m: Message) -> None:
    raft.log.commit_to(m.commit)
    raft.send(Message(type=M.HEARTBEAT_RESP, to=m.from_, context=m.context))


# --8<-- [end:handle-heartbeat]


# --8<-- [start:restore]
def handle_snapshot(raft: Raft, m: Message) -> None:
    snapshot = m.snapshot if m.snapshot is not None else Snapshot()
    if restore(raft, snapshot):
        metadata = snapshot.metadata
        raft.emit(ev.SnapshotRestored(raft.id, raft.term, metadata.index, metadata.term))
        raft.send(Message(type=M.APP_RESP, to=m.from_, index=raft.log.last_index()))
    else:
        raft.send(Message(type=M.APP_RESP, to=m.from_, index=raft.log.committed))


def restore(raft: Raft, snapshot: Snapshot) -> bool:
    """InstallSnapshot, receiver side (Raft §7). Returns False if the snapshot is not
    needed: it is older than our commit index, or our log already holds its last entry
    (then we only learn that everything up to it is committed)."""
    metadata = snapshot.metadata
    if metadata.index <= raft.log.committed:
        return False
    if raft.role is not Role.FOLLOWER:
        # Cannot happen: only a follower receives snapshots. Be safe anyway.
        raft.become_follower(raft.term + 1, NONE)
        return False
    conf_state = metadata.conf_state
    if raft.id not in conf_state.voters and raft.id not in conf_state.learners:
        return False
    if raft.log.match_term(metadata.index, metadata.term):
        raft.log.commit_to(metadata.index)
        return False
    raft.log.restore(snapshot)
    raft.tracker.restore(conf_state, next_index=raft.log.last_index())
    return True


# --8<-- [end:restore]


Handler = Callable[["Raft", Message], None]

#: What a message from the leader asks of a follower (and of a candidate that lost to it).
FROM_LEADER: dict[MessageType, Handler] = {
    M.APP: handle_append_entries,
    M.HEARTBEAT: handle_heartbeat,
    M.SNAP: handle_snapshot,
}

HANDLERS: dict[MessageType, Handler] = {
    M.PROP: propose,
    M.APP: from_leader,
    M.HEARTBEAT: from_leader,
    M.SNAP: from_leader,
    M.TRANSFER_LEADER: forward_if_leader,
    M.TIMEOUT_NOW: timeout_now,
    M.READ_INDEX: forward_if_leader,
    M.READ_INDEX_RESP: read_index_response,
}
