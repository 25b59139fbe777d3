"""The Raft state machine: one node's roles, terms and elections, with no I/O.

Theory of operation
-------------------
A `Raft` is driven by two inputs and nothing else: `Raft.tick` (time passed) and `Raft.step`
(a message arrived -- from a peer, or from the node to itself, like "start an election").
It answers by appending to three lists that the caller drains (through
`kv.raft.node.RawNode.ready`): messages to send, the log's unstable entries to persist, and
structured `kv.raft.events` for people. Same state and same inputs give the same outputs;
randomness (the election timeout) comes from a random source passed in.

`step` first applies the rules about terms that hold in every role (Figure 2, "Rules for
Servers", All Servers: "if RPC request or response contains term T > currentTerm: set
currentTerm = T, convert to follower"), answers vote requests (RequestVote, Figure 2), and
then hands the message to the current role's table of handlers:

======================  ==========================================================
role (module)           handles
======================  ==========================================================
FOLLOWER                MsgApp, MsgHeartbeat, MsgSnap from the leader; forwards
(`kv.raft.follower`)    MsgProp, MsgReadIndex, MsgTransferLeader to it;
                        MsgReadIndexResp; MsgTimeoutNow
PRE_CANDIDATE,          MsgPreVoteResp / MsgVoteResp (tally); MsgApp, MsgHeartbeat,
CANDIDATE (here)        MsgSnap (someone else won: become follower); drops MsgProp
LEADER                  MsgBeat, MsgCheckQuorum, MsgProp, MsgReadIndex; and from a
(`kv.raft.leader`)      member whose progress it tracks: MsgAppResp,
                        MsgHeartbeatResp, MsgSnapStatus, MsgUnreachable,
                        MsgTransferLeader
======================  ==========================================================

`kv.raft.follower` is the follower's side of replication (appends, heartbeats, snapshots
taken from the leader, requests forwarded to it); `kv.raft.leader` the leader's (appends sent
and answered, commitment, ReadIndex, transfer). The candidates' handlers are elections, and
stay here.

Roles change only through the ``become_*`` methods::

    FOLLOWER --election timeout (PreVote on)--> PRE_CANDIDATE --pre-votes won--> CANDIDATE
    FOLLOWER --election timeout (PreVote off), MsgTimeoutNow--> CANDIDATE
    CANDIDATE --votes won--> LEADER
    any role --higher term, lost election, lost quorum--> FOLLOWER

Persistence before speaking (Figure 2: "updated on stable storage before responding to
RPCs"): a vote and an accepted append are answered with messages that leave only in a Ready,
after the Ready's hard state and entries were written. A node's acknowledgement of its own
vote or of its own new entries is likewise a message to itself, stepped only when the
application has persisted them (`kv.raft.node.RawNode.advance`).

Beyond Figure 2 this is etcd's Raft (``raft/raft.go``): PreVote (thesis §9.6), CheckQuorum
(thesis §6.2), ReadIndex (thesis §6.4), leader transfer (thesis §3.10), snapshots (Raft §7)
and one-at-a-time membership changes with learners (thesis §4.1-4.2; `kv.raft.conf_change`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import NoReturn, Protocol

from kv.raft import conf_change, follower, leader
from kv.raft import events as ev
from kv.raft.config import Config
from kv.raft.errors import ProposalDroppedError
from kv.raft.log import RaftLog
from kv.raft.messages import (
    NONE,
    ConfChange,
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    vote_response_type,
)
from kv.raft.progress import Progress
from kv.raft.quorum import VoteResult
from kv.raft.read_only import ReadOnly, ReadState
from kv.raft.roles import CampaignType, Role
from kv.raft.storage import Storage
from kv.raft.tracker import ProgressTracker

M = MessageType


class RandomSource(Protocol):
    """Where the election timeout's randomness comes from: a seeded ``random.Random``."""

    def randrange(self, start: int, stop: int) -> int: ...


#: A vote request carrying this context comes from a leader transfer: voters honour it even
#: while they believe the current leader is alive (etcd sends the campaign type as bytes).
TRANSFER_CONTEXT = CampaignType.TRANSFER.value.encode()

#: The messages whose sending must wait until the node's state is persisted, because they
#: promise something about that state: a vote, or that entries are stored.
_AFTER_PERSIST = frozenset({M.APP_RESP, M.VOTE_RESP, M.PRE_VOTE_RESP})

#: Messages that carry the term the sender campaigns for rather than its current term.
_CAMPAIGN_MESSAGES = frozenset({M.VOTE, M.VOTE_RESP, M.PRE_VOTE, M.PRE_VOTE_RESP})

Handler = Callable[["Raft", Message], None]


class Raft:
    """One Raft node's state machine. Use it through `kv.raft.node.RawNode`."""

    def __init__(self, config: Config, storage: Storage, rng: RandomSource) -> None:
        config.validate()
        self.id = config.id
        self.config = config
        self.rng = rng
        self.log = RaftLog(storage, config.max_committed_size_per_ready)
        hard_state, conf_state = storage.initial_state()

        # Figure 2, persistent state on all servers (the log is self.log).
        self.term = 0
        self.vote = NONE

        self.role = Role.FOLLOWER
        self.lead = NONE
        self.tracker = ProgressTracker(config.max_inflight_msgs)
        self.tracker.restore(conf_state, next_index=self.log.last_index())

        #: Messages to send once the current Ready is persisted.
        self.msgs: list[Message] = []
        #: Acknowledgements that promise persisted state (votes, stored entries).
        self.msgs_after_append: list[Message] = []
        #: Reads confirmed by ReadIndex, for the application.
        self.read_states: list[ReadState] = []
        #: The structured event stream (see `kv.raft.events`).
        self.events: list[ev.Event] = []

        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_tick
        #: The node the leader is handing leadership to (thesis §3.10), or NONE.
        self.lead_transferee = NONE
        #: A leader accepts a new conf change only once the previous one (at this index or
        #: below) has been applied: one change at a time (thesis §4.1).
        self.pending_conf_index = 0
        self.read_only = ReadOnly(config.read_only_option)
        #: ReadIndex requests that wait for the new leader's first commit in its term.
        self.pending_read_index_messages: list[Message] = []

        if not hard_state.is_empty():
            self._load_state(hard_state)
        if config.applied > 0:
            self.log.applied_to(config.applied)
        self._reported_commit = self.log.committed
        self.become_follower(self.term, NONE)

    def __repr__(self) -> str:
        return f"Raft(id={self.id}, role={self.role}, term={self.term}, lead={self.lead})"

    # -- state for the application ----------------------------------------------------------

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    @property
    def is_learner(self) -> bool:
        return self.id in self.tracker.learners

    # --8<-- [start:promotable]
    def promotable(self) -> bool:
        """May this node become leader? Only a voter of its own configuration may, and not
        while it is installing a snapshot."""
        progress = self.tracker.progress.get(self.id)
        return (
            progress is not None and not progress.is_learner and self.log.unstable.snapshot is None
        )

    # --8<-- [end:promotable]

    def emit(self, event: ev.Event) -> None:
        self.events.append(event)

    def _report_commit(self) -> None:
        if self.log.committed > self._reported_commit:
            self._reported_commit = self.log.committed
            self.emit(ev.Committed(self.id, self.term, self.log.committed))

    def _load_state(self, state: HardState) -> None:
        if not self.log.committed <= state.commit <= self.log.last_index():
            raise AssertionError(
                f"{self.id} state.commit {state.commit} is out of range "
                f"[{self.log.committed}, {self.log.last_index()}]"
            )
        self.log.committed = state.commit
        self.term = state.term
        self.vote = state.vote

    # -- sending ------------------------------------------------------------------------

    # --8<-- [start:send]
    def send(self, message: Message) -> None:
        """Queue ``message``; it leaves in the next Ready, after that Ready is persisted."""
        sender = self.id if message.from_ == NONE else message.from_
        term = message.term
        if message.type in _CAMPAIGN_MESSAGES:
            if term == 0:
                raise AssertionError(f"term should be set when sending {message.type}")
        elif message.type not in (M.PROP, M.READ_INDEX):
            # Proposals and read requests forwarded to the leader travel without a term:
            # they are requests on the client's behalf, not part of the protocol's exchange.
            term = self.term
        if sender != message.from_ or term != message.term:
            message = replace(message, from_=sender, term=term)  # one copy for both fields
        if message.type in _AFTER_PERSIST:
            self.msgs_after_append.append(message)
        else:
            if message.to == self.id:
                raise AssertionError(f"message should not be self-addressed: {message.type}")
            self.msgs.append(message)

    # --8<-- [end:send]

    # -- role changes (the only place they happen) ------------------------------------------

    # --8<-- [start:reset]
    def _reset(self, term: int) -> None:
        """What every role change resets: a new term forgets the vote (Figure 2), timers
        restart with a fresh random timeout, a leader's bookkeeping goes."""
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.tracker.reset_votes()
        last_index = self.log.last_index()
        for member, old in list(self.tracker):
            # Figure 2, volatile state on leaders: nextIndex = leader last log index + 1,
            # matchIndex = 0.
            progress = Progress(
                next_index=last_index + 1,
                max_inflight=self.tracker.max_inflight,
                is_learner=old.is_learner,
            )
            if member == self.id:
                progress.match = last_index
            self.tracker.progress[member] = progress
        self.pending_conf_index = 0
        self.read_only = ReadOnly(self.read_only.option)
        self.pending_read_index_messages = []

    # --8<-- [end:reset]

    # --8<-- [start:become]
    def become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER
        self.emit(ev.BecameFollower(self.id, self.term, lead))

    def become_pre_candidate(self) -> None:
        """PreVote's first phase: ask for votes for term + 1 without changing anything.

        The term and the vote stay as they are, so a pre-candidate that loses (it cannot
        reach a majority, or its log is behind) disturbs no one (thesis §9.6).
        """
        if self.role is Role.LEADER:
            raise AssertionError("invalid transition [leader -> pre-candidate]")
        self.tracker.reset_votes()
        self.lead = NONE
        self.role = Role.PRE_CANDIDATE
        self.emit(ev.BecamePreCandidate(self.id, self.term))

    def become_candidate(self) -> None:
        """Raft §5.2: increment currentTerm, vote for self, reset the election timer."""
        if self.role is Role.LEADER:
            raise AssertionError("invalid transition [leader -> candidate]")
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE
        self.emit(ev.BecameCandidate(self.id, self.term))

    # --8<-- [end:become]

    # --8<-- [start:become-leader]
    def become_leader(self) -> None:
        """Won the election: append an empty entry of the new term and replicate it.

        The empty entry is how a new leader learns what is committed (Raft §5.4.2, §8):
        entries of earlier terms commit only indirectly, when an entry of the leader's own
        term does. ReadIndex waits for it too.
        """
        if self.role is Role.FOLLOWER:
            raise AssertionError("invalid transition [follower -> leader]")
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        own = self.tracker.progress[self.id]
        own.become_replicate()
        own.recent_active = True
        # Any conf change in the uncommitted tail may still be pending; accept a new one
        # only after everything up to here is applied.
        self.pending_conf_index = self.log.last_index()
        self.emit(ev.BecameLeader(self.id, self.term))
        leader.append_entry(self, [Entry()])

    # --8<-- [end:become-leader]

    # -- ticks ------------------------------------------------------------------------------

    def tick(self) -> None:
        """One unit of time passed."""
        try:
            if self.role is Role.LEADER:
                self._tick_heartbeat()
            else:
                self._tick_election()
        finally:
            self._report_commit()

    # --8<-- [start:randomized-timeout]
    def reset_randomized_election_timeout(self) -> None:
        """Raft §5.2: election timeouts are chosen randomly, here from [et, 2et), so that
        usually one node times out first and wins before the others wake up."""
        election = self.config.election_tick
        self.randomized_election_timeout = self.rng.randrange(election, 2 * election)

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    # --8<-- [end:randomized-timeout]

    # --8<-- [start:tick-election]
    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=M.HUP, from_=self.id))

    # --8<-- [end:tick-election]

    # --8<-- [start:tick-heartbeat]
    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_tick:
            self.election_elapsed = 0
            if self.config.check_quorum:
                self.step(Message(type=M.CHECK_QUORUM, from_=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.role is Role.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.role is not Role.LEADER:
            return
        if self.heartbeat_elapsed >= self.config.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self.step(Message(type=M.BEAT, from_=self.id))

    # --8<-- [end:tick-heartbeat]

    # -- elections ----------------------------------------------------------------------------

    # --8<-- [start:hup]
    def hup(self, campaign_type: CampaignType) -> None:
        """Start an election, if this node may."""
        if self.role is Role.LEADER:
            return
        if not self.promotable():
            return
        if conf_change.has_unapplied(self):
            # The configuration it would campaign in may be about to change.
            return
        self.campaign(campaign_type)

    # --8<-- [end:hup]

    # --8<-- [start:campaign]
    def campaign(self, campaign_type: CampaignType) -> None:
        """Become (pre-)candidate and ask every voter for its vote (RequestVote, Figure 2)."""
        if campaign_type is CampaignType.PRE_ELECTION:
            self.become_pre_candidate()
            vote_type = M.PRE_VOTE
            # Pre-votes are asked for the term the node would campaign in.
            term = self.term + 1
        else:
            self.become_candidate()
            vote_type = M.VOTE
            term = self.term
        context = TRANSFER_CONTEXT if campaign_type is CampaignType.TRANSFER else b""
        for voter in sorted(self.tracker.voters):
            if voter == self.id:
                # Its own vote, counted once the vote is persisted (see `send`).
                self.send(Message(type=vote_response_type(vote_type), to=self.id, term=term))
                continue
            self.send(
                Message(
                    type=vote_type,
                    to=voter,
                    term=term,
                    index=self.log.last_index(),
                    log_term=self.log.last_term(),
                    context=context,
                )
            )

    # --8<-- [end:campaign]

    def poll(self, voter: int, granted: bool) -> VoteResult:
        self.tracker.record_vote(voter, granted)
        return self.tracker.tally_votes()[2]

    # --8<-- [start:vote]
    def _handle_vote_request(self, m: Message) -> None:
        """RequestVote, receiver implementation (Figure 2), for votes and pre-votes.

        Grant if (1) this node has not voted for someone else in this term -- a node votes at
        most once per term (§5.2) -- and (2) the candidate's log is at least as up-to-date
        as its own (§5.4.1). A pre-vote for a later term is granted on the log check alone,
        and records nothing: the real vote may still go to someone else.
        """
        pre_vote = m.type is M.PRE_VOTE
        can_vote = (
            self.vote == m.from_
            or (self.vote == NONE and self.lead == NONE)
            or (pre_vote and m.term > self.term)
        )
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # Answer with the request's term, not ours: a pre-vote's term is in our future,
            # and a response with our (older) term would be ignored as stale.
            self.send(Message(type=vote_response_type(m.type), to=m.from_, term=m.term))
            if not pre_vote:
                self.election_elapsed = 0
                self.vote = m.from_
            self.emit(ev.VoteGranted(self.id, m.term, m.from_, pre_vote))
        else:
            self.send(
                Message(type=vote_response_type(m.type), to=m.from_, term=self.term, reject=True)
            )
            self.emit(ev.VoteRejected(self.id, self.term, m.from_, pre_vote))

    # --8<-- [end:vote]

    # -- stepping ---------------------------------------------------------------------------

    def step(self, m: Message) -> None:
        """Feed one message into the state machine.

        Raises:
            ProposalDroppedError: a proposal that cannot be taken now.
        """
        try:
            self._step(m)
        finally:
            self._report_commit()

    # --8<-- [start:step]
    def _step(self, m: Message) -> None:
        if m.term == 0:
            pass  # a local message, or a proposal/read forwarded by a follower
        elif m.term > self.term:
            if m.type in (M.VOTE, M.PRE_VOTE):
                forced = m.context == TRANSFER_CONTEXT
                in_lease = (
                    self.config.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.config.election_tick
                )
                if in_lease and not forced:
                    # Thesis §4.2.3: a node that heard from a leader within the minimum
                    # election timeout ignores vote requests -- neither its term nor its
                    # vote changes -- so a removed or partitioned node cannot disrupt.
                    self.emit(
                        ev.VoteIgnored(self.id, self.term, m.from_, m.term, m.type is M.PRE_VOTE)
                    )
                    return
            if m.type is M.PRE_VOTE:
                pass  # never change term for a pre-vote request
            elif m.type is M.PRE_VOTE_RESP and not m.reject:
                # Pre-votes granted for the term we would campaign in: we raise our term
                # ourselves once a majority agreed.
                pass
            elif m.type in (M.APP, M.HEARTBEAT, M.SNAP):
                self.become_follower(m.term, m.from_)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            self._step_lower_term(m)
            return

        if m.type is M.HUP:
            self.hup(CampaignType.PRE_ELECTION if self.config.pre_vote else CampaignType.ELECTION)
        elif m.type in (M.VOTE, M.PRE_VOTE):
            self._handle_vote_request(m)
        else:
            handler = _HANDLERS[self.role].get(m.type)
            if handler is not None:
                handler(self, m)

    # --8<-- [end:step]

    # --8<-- [start:lower-term]
    def _step_lower_term(self, m: Message) -> None:
        """A message from an older term: a stale leader, a delayed reply, a lagging node."""
        if (self.config.check_quorum or self.config.pre_vote) and m.type in (
            M.HEARTBEAT,
            M.APP,
        ):
            # A leader of an older term. Tell it our term, so it steps down. Without
            # CheckQuorum/PreVote this happens when it next sees our vote requests; with
            # them those may be ignored or never sent, and it would stay leader forever.
            self.send(Message(type=M.APP_RESP, to=m.from_))
        elif m.type is M.PRE_VOTE:
            # Reject explicitly (rather than ignore) so that a pre-candidate with a stale
            # term learns ours and can move on.
            self.send(Message(type=M.PRE_VOTE_RESP, to=m.from_, term=self.term, reject=True))
            self.emit(ev.VoteRejected(self.id, self.term, m.from_, pre_vote=True))
        # Anything else from an older term is ignored (Figure 2 replies "false" to a stale
        # RPC; ignoring it is just as safe, and the sender learns our term by other means).

    # --8<-- [end:lower-term]

    # -- refusing a proposal (in any role) ----------------------------------------------------

    def drop_proposal(self, reason: str) -> NoReturn:
        self.emit(ev.ProposalDropped(self.id, self.term, reason))
        raise ProposalDroppedError(reason)

    # -- candidates ----------------------------------------------------------------------------

    def _candidate_propose(self, m: Message) -> None:
        self.drop_proposal("no leader")

    def _candidate_from_leader(self, m: Message) -> None:
        """Someone else won this term (its term equals ours): follow it (Raft §5.2)."""
        self.become_follower(m.term, m.from_)
        follower.FROM_LEADER[m.type](self, m)

    # --8<-- [start:tally]
    def _candidate_vote_response(self, m: Message) -> None:
        # A candidate may still receive pre-vote answers from its pre-candidate phase:
        # count only the answers to the current campaign.
        expected = M.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else M.VOTE_RESP
        if m.type is not expected:
            return
        result = self.poll(m.from_, not m.reject)
        if result is VoteResult.WON:
            if self.role is Role.PRE_CANDIDATE:
                self.campaign(CampaignType.ELECTION)
            else:
                self.become_leader()
                leader.bcast_append(self)
        elif result is VoteResult.LOST:
            # A pre-vote response carries a future term; stay in ours.
            self.become_follower(self.term, NONE)

    # --8<-- [end:tally]

    # -- leaders (the handlers are in kv.raft.leader) -------------------------------------------

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    # -- configuration (the changes are in kv.raft.conf_change) ---------------------------

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        """Apply a committed configuration change (it takes effect when applied)."""
        try:
            return conf_change.apply(self, change)
        finally:
            self._report_commit()


_CANDIDATE: dict[MessageType, Handler] = {
    M.PROP: Raft._candidate_propose,
    M.APP: Raft._candidate_from_leader,
    M.HEARTBEAT: Raft._candidate_from_leader,
    M.SNAP: Raft._candidate_from_leader,
    M.VOTE_RESP: Raft._candidate_vote_response,
    M.PRE_VOTE_RESP: Raft._candidate_vote_response,
    # MsgTimeoutNow is ignored: a candidate is already campaigning.
}

#: Each role's handlers; a message a role has no handler for is ignored.
_HANDLERS: dict[Role, dict[MessageType, Handler]] = {
    Role.FOLLOWER: follower.HANDLERS,
    Role.PRE_CANDIDATE: _CANDIDATE,
    Role.CANDIDATE: _CANDIDATE,
    Role.LEADER: leader.HANDLERS,
}
