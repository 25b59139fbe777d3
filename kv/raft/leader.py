"""The leader's side of Raft: replicating the log, committing, and serving its members.

Theory of operation
-------------------
New entries join the leader's log through `append_entry` (a proposal, or the empty entry a
new leader appends), stamped with its term. A leader keeps one `Progress` per member (Figure
2's nextIndex and matchIndex, plus etcd's flow control) and talks to each member in three ways:

* **Appends** (`maybe_send_append`): the entries from the member's ``next`` on, anchored at
  the entry before them so the follower can check consistency (Figure 2, AppendEntries). When
  those entries were compacted away it sends its snapshot instead (Raft §7).
* **Heartbeats** (`bcast_heartbeat`, every ``heartbeat_tick``): empty, to keep its authority
  (§5.2), to carry the commit index, and to confirm leadership for ReadIndex (thesis §6.4).
* **Answers** (`HANDLERS`): an accepted append raises the member's ``match`` and may commit
  (`maybe_commit`, only entries of the current term: Figure 8); a rejected one moves
  ``next`` back, guided by the follower's hint (§5.3).

Besides, the leader steps down when a majority has been silent for an election timeout
(CheckQuorum, thesis §6.2) and hands leadership over on request (thesis §3.10). Every function
here takes the `kv.raft.raft.Raft` it works on, like etcd's ``stepLeader(r, m)``; the
`kv.raft.raft.Raft.step` dispatch calls them through `HANDLERS` while the node is leader.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kv.raft import events as ev
from kv.raft.errors import CompactedError, SnapshotTemporarilyUnavailableError
from kv.raft.messages import NONE, Entry, EntryType, Message, MessageType
from kv.raft.progress import Progress, ProgressState
from kv.raft.quorum import VoteResult, vote_result
from kv.raft.read_only import ReadOnlyOption, ReadState

if TYPE_CHECKING:
    from kv.raft.raft import Raft

M = MessageType


# -- the leader's log ----------------------------------------------------------------------


# --8<-- [start:append-entry]
def append_entry(raft: Raft, entries: Sequence[Entry]) -> None:
    """Append new entries at the leader's term after its last entry."""
    last_index = raft.log.last_index()
    stamped = [
        Entry(term=raft.term, index=last_index + 1 + i, type=entry.type, data=entry.data)
        for i, entry in enumerate(entries)
    ]
    last_index = raft.log.append(stamped)
    # The leader's own acknowledgement, stepped once the entries are persisted.
    raft.send(Message(type=M.APP_RESP, to=raft.id, index=last_index))


def maybe_commit(raft: Raft) -> bool:
    """Advance the commit index to what a majority holds, if that entry is of this term
    (Raft §5.4.2, Figure 8)."""
    return raft.log.maybe_commit(raft.tracker.committed(), raft.term)


def committed_entry_in_current_term(raft: Raft) -> bool:
    return raft.log.term_or_zero(raft.log.committed) == raft.term


# --8<-- [end:append-entry]


# -- sending ------------------------------------------------------------------------------


def send_append(raft: Raft, to: int) -> None:
    maybe_send_append(raft, to, send_if_empty=True)


# --8<-- [start:send-append]
def maybe_send_append(raft: Raft, to: int, *, send_if_empty: bool) -> bool:
    """Send ``to`` the entries from its ``next`` on, if its progress allows.

    The message carries the entry just before them (prevLogIndex, prevLogTerm) for the
    follower's consistency check (Figure 2). When those entries were compacted away, a
    snapshot goes instead (Raft §7). Returns whether a message was sent.
    """
    progress = raft.tracker.progress[to]
    if progress.is_paused():
        return False
    prev_index = progress.next - 1
    try:
        prev_term = raft.log.term(prev_index)
        entries = raft.log.entries(progress.next, raft.config.max_size_per_msg)
    except CompactedError:
        return maybe_send_snapshot(raft, to, progress)
    if not entries and not send_if_empty:
        return False
    raft.send(
        Message(
            type=M.APP,
            to=to,
            index=prev_index,
            log_term=prev_term,
            entries=tuple(entries),
            commit=raft.log.committed,
        )
    )
    progress.sent_entries(entries[-1].index if entries else None)
    return True


# --8<-- [end:send-append]


# --8<-- [start:send-snapshot]
def maybe_send_snapshot(raft: Raft, to: int, progress: Progress) -> bool:
    if not progress.recent_active:
        # Do not pay for a snapshot to a node that may well be down.
        return False
    try:
        snapshot = raft.log.snapshot()
    except SnapshotTemporarilyUnavailableError:
        return False
    if snapshot.is_empty():
        raise AssertionError("need non-empty snapshot")
    progress.become_snapshot(snapshot.metadata.index)
    raft.send(Message(type=M.SNAP, to=to, snapshot=snapshot))
    raft.emit(ev.SnapshotSent(raft.id, raft.term, to, snapshot.metadata.index))
    return True


# --8<-- [end:send-snapshot]


# --8<-- [start:heartbeat]
def send_heartbeat(raft: Raft, to: int, context: bytes) -> None:
    # The commit index a heartbeat carries is at most what the follower is known to
    # hold: a follower must never commit an entry it may not have (or has wrong).
    commit = min(raft.tracker.progress[to].match, raft.log.committed)
    raft.send(Message(type=M.HEARTBEAT, to=to, commit=commit, context=context))


# --8<-- [end:heartbeat]


def bcast_append(raft: Raft) -> None:
    for member in raft.tracker.ids():
        if member != raft.id:
            send_append(raft, member)


def bcast_heartbeat(raft: Raft) -> None:
    bcast_heartbeat_with_context(raft, raft.read_only.last_pending_request_ctx())


def bcast_heartbeat_with_context(raft: Raft, context: bytes) -> None:
    for member in raft.tracker.ids():
        if member != raft.id:
            send_heartbeat(raft, member, context)


# -- the leader's messages -------------------------------------------------------------


def beat(raft: Raft, m: Message) -> None:
    bcast_heartbeat(raft)


# --8<-- [start:check-quorum]
def check_quorum(raft: Raft, m: Message) -> None:
    """CheckQuorum (thesis §6.2): step down if a majority was silent for an election
    timeout. A leader cut off from the majority would otherwise keep serving stale reads
    and accepting proposals that can never commit."""
    if not raft.tracker.quorum_active():
        raft.emit(ev.QuorumLost(raft.id, raft.term))
        raft.become_follower(raft.term, NONE)
        return
    for member, progress in raft.tracker:
        if member != raft.id:
            progress.recent_active = False


# --8<-- [end:check-quorum]


# --8<-- [start:propose]
def propose(raft: Raft, m: Message) -> None:
    if not m.entries:
        raise AssertionError(f"{raft.id} stepped empty MsgProp")
    if raft.id not in raft.tracker.progress:
        raft.drop_proposal("this node was removed from the configuration")
    if raft.lead_transferee != NONE:
        raft.drop_proposal(f"leadership transfer to n{raft.lead_transferee} in progress")
    entries = list(m.entries)
    for i, entry in enumerate(entries):
        if entry.type is not EntryType.CONF_CHANGE:
            continue
        if raft.pending_conf_index > raft.log.applied:
            # One configuration change at a time (thesis §4.1): refuse by turning it
            # into an empty normal entry (the proposer sees it applied as a no-op).
            entries[i] = Entry()
        else:
            raft.pending_conf_index = raft.log.last_index() + i + 1
    append_entry(raft, entries)
    bcast_append(raft)


# --8<-- [end:propose]


# --8<-- [start:read-index]
def read_index(raft: Raft, m: Message) -> None:
    if raft.tracker.is_singleton():
        # The only voter: its commit index is trivially the cluster's.
        answer_read_index(raft, m, raft.log.committed)
        return
    if not committed_entry_in_current_term(raft):
        # A new leader does not know the latest commit index until it commits an entry
        # of its own term (thesis §6.4 step 1). Postpone.
        raft.pending_read_index_messages.append(m)
        return
    send_read_index_response(raft, m)


def send_read_index_response(raft: Raft, m: Message) -> None:
    if raft.read_only.option is ReadOnlyOption.SAFE:
        context = m.entries[0].data
        raft.read_only.add_request(raft.log.committed, m)
        raft.read_only.receive_ack(raft.id, context)
        bcast_heartbeat_with_context(raft, context)
    else:
        answer_read_index(raft, m, raft.log.committed)


# --8<-- [end:read-index]


def answer_read_index(raft: Raft, request: Message, index: int) -> None:
    if request.from_ in (NONE, raft.id):
        raft.read_states.append(ReadState(index=index, request_ctx=request.entries[0].data))
    else:
        raft.send(
            Message(type=M.READ_INDEX_RESP, to=request.from_, index=index, entries=request.entries)
        )


def release_pending_read_index_messages(raft: Raft) -> None:
    if not raft.pending_read_index_messages or not committed_entry_in_current_term(raft):
        return
    pending, raft.pending_read_index_messages = raft.pending_read_index_messages, []
    for m in pending:
        send_read_index_response(raft, m)


def from_member(raft: Raft, m: Message) -> None:
    """Messages about one member: only from a member whose progress we track."""
    progress = raft.tracker.progress.get(m.from_)
    if progress is None:
        return
    _MEMBER_HANDLERS[m.type](raft, m, progress)


# --8<-- [start:append-response]
def append_response(raft: Raft, m: Message, progress: Progress) -> None:
    progress.recent_active = True
    if m.reject:
        # The follower's log does not match at m.index. Its hint is the last entry it
        # has at or before m.index with a term <= the probe's term; we search our own
        # log the same way, skipping every entry whose term already rules it out.
        next_probe = m.reject_hint
        if m.log_term > 0:
            next_probe, _ = raft.log.find_conflict_by_term(m.reject_hint, m.log_term)
        if progress.maybe_decrease_to(m.index, next_probe):
            if progress.state is ProgressState.REPLICATE:
                progress.become_probe()
            send_append(raft, m.from_)
        return
    was_paused = progress.is_paused()
    if not (
        progress.maybe_update(m.index)
        or (progress.match == m.index and progress.state is ProgressState.PROBE)
    ):
        return
    if progress.state is ProgressState.PROBE:
        progress.become_replicate()
    elif progress.state is ProgressState.SNAPSHOT and progress.match + 1 >= raft.log.first_index():
        # The snapshot arrived: the follower can continue from the log.
        progress.become_probe()
        progress.become_replicate()
    elif progress.state is ProgressState.REPLICATE:
        progress.inflights.free_le(m.index)

    if maybe_commit(raft):
        release_pending_read_index_messages(raft)
        bcast_append(raft)
    elif was_paused and m.from_ != raft.id:
        # While paused it missed the append that carried the latest commit index.
        send_append(raft, m.from_)
    if m.from_ != raft.id:
        # Flow control may allow more appends now; send what we have (not empty ones).
        while maybe_send_append(raft, m.from_, send_if_empty=False):
            pass
    if m.from_ == raft.lead_transferee and progress.match == raft.log.last_index():
        # The transferee caught up: tell it to campaign now (thesis §3.10).
        raft.send(Message(type=M.TIMEOUT_NOW, to=m.from_))


# --8<-- [end:append-response]


# --8<-- [start:heartbeat-response]
def heartbeat_response(raft: Raft, m: Message, progress: Progress) -> None:
    progress.recent_active = True
    progress.probe_sent = False
    if progress.match < raft.log.last_index() or progress.state is ProgressState.PROBE:
        send_append(raft, m.from_)
    if raft.read_only.option is not ReadOnlyOption.SAFE or not m.context:
        return
    acks = raft.read_only.receive_ack(m.from_, m.context)
    if vote_result(raft.tracker.voters, dict.fromkeys(acks, True)) is not VoteResult.WON:
        return
    for status in raft.read_only.advance(m.context):
        answer_read_index(raft, status.request, status.index)


# --8<-- [end:heartbeat-response]


# --8<-- [start:snapshot-status]
def snapshot_status(raft: Raft, m: Message, progress: Progress) -> None:
    if progress.state is not ProgressState.SNAPSHOT:
        return
    if m.reject:
        # The snapshot never arrived: probe from where the follower was.
        progress.pending_snapshot = 0
    progress.become_probe()
    # Wait for the follower's MsgAppResp (or a heartbeat) before the next append.
    progress.probe_sent = True


# --8<-- [end:snapshot-status]


def unreachable(raft: Raft, m: Message, progress: Progress) -> None:
    # Optimistic appends were probably lost: find out where the follower is.
    if progress.state is ProgressState.REPLICATE:
        progress.become_probe()


# --8<-- [start:transfer-leader]
def transfer_leader(raft: Raft, m: Message, progress: Progress) -> None:
    """Leadership transfer (thesis §3.10): stop taking proposals, bring the transferee's
    log up to date, then send it MsgTimeoutNow so it campaigns at once."""
    if progress.is_learner:
        return
    transferee = m.from_
    if raft.lead_transferee != NONE:
        if raft.lead_transferee == transferee:
            return
        raft.abort_leader_transfer()
    if transferee == raft.id:
        return
    raft.emit(ev.LeaderTransferStarted(raft.id, raft.term, transferee))
    # The transfer should finish within an election timeout.
    raft.election_elapsed = 0
    raft.lead_transferee = transferee
    if progress.match == raft.log.last_index():
        raft.send(Message(type=M.TIMEOUT_NOW, to=transferee))
    else:
        send_append(raft, transferee)


# --8<-- [end:transfer-leader]


HANDLERS: dict[MessageType, Callable[[Raft, Message], None]] = {
    M.BEAT: beat,
    M.CHECK_QUORUM: check_quorum,
    M.PROP: propose,
    M.READ_INDEX: read_index,
    M.APP_RESP: from_member,
    M.HEARTBEAT_RESP: from_member,
    M.SNAP_STATUS: from_member,
    M.UNREACHABLE: from_member,
    M.TRANSFER_LEADER: from_member,
}

_MEMBER_HANDLERS: dict[MessageType, Callable[[Raft, Message, Progress], None]] = {
    M.APP_RESP: append_response,
    M.HEARTBEAT_RESP: heartbeat_response,
    M.SNAP_STATUS: snapshot_status,
    M.UNREACHABLE: unreachable,
    M.TRANSFER_LEADER: transfer_leader,
}
