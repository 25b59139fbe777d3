"""`RawNode`: the Raft core's whole public surface, and `Ready`, everything it asks for.

The application drives a node with a loop like this one (etcd: ``raft/rawnode.go``; the
order is the contract)::

    node = RawNode(Config(id=1), storage, random.Random(seed))
    while True:
        ...                              # on a timer: node.tick()
        ...                              # on a message from a peer: node.step(message)
        ...                              # on a client request: node.propose(data)
        if node.has_ready():
            ready = node.ready()
            storage.append(ready.entries)            # 1. persist: entries, hard state,
            if ready.hard_state: storage.set_hard_state(ready.hard_state)
            if ready.snapshot: storage.apply_snapshot(ready.snapshot)   # and snapshot
            transport.send(ready.messages)           # 2. only then send
            apply(ready.snapshot, ready.committed_entries)  # 3. apply (conf changes via
                                                            #    node.apply_conf_change)
            node.advance(ready)                      # 4. acknowledge

Persist before sending is Figure 2's "updated on stable storage before responding to RPCs":
a vote or an append acknowledgement sent before the state behind it is durable could be
forgotten in a crash, and the node could then vote twice or lose a committed entry.

A `Ready` must be advanced before the next one is taken. Messages may be stepped and ticks
given between `RawNode.ready` and `RawNode.advance`; what they produce waits for the next
Ready.

Besides inputs and Readys, a driver may read the node's state through read-only accessors
(`RawNode.commit_index`, `RawNode.last_index`, `RawNode.term_at`, `RawNode.conf_state`,
`RawNode.has_committed_to_apply`, ...; `RawNode.status` gathers them for a display). They are
the whole view a driver gets: nothing outside ``kv.raft`` touches ``RawNode.raft``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kv.raft import events as ev
from kv.raft.config import Config
from kv.raft.errors import StepLocalMessageError, StepPeerNotFoundError
from kv.raft.messages import (
    LOCAL_MESSAGES,
    RESPONSE_MESSAGES,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
)
from kv.raft.progress import PeerStatus
from kv.raft.raft import Raft, RandomSource
from kv.raft.read_only import ReadState
from kv.raft.roles import Role
from kv.raft.storage import Storage


@dataclass(frozen=True, slots=True)
class SoftState:
    """What need not be persisted: who leads, and this node's role."""

    lead: int
    role: Role


# --8<-- [start:ready]
@dataclass(frozen=True, slots=True)
class Ready:
    """The work a node hands the application, to be done in this order:

    1. Persist ``hard_state`` (if not None), ``entries`` and ``snapshot`` (if not None) --
       synchronously (fsync) when ``must_sync``.
    2. Send ``messages``.
    3. Apply ``snapshot`` and then ``committed_entries`` to the state machine; serve the
       reads in ``read_states`` once applied up to their index.
    4. Call `RawNode.advance`.
    """

    #: The leader or this node's role changed (None: unchanged).
    soft_state: SoftState | None = None
    #: Term, vote or commit changed (None: unchanged).
    hard_state: HardState | None = None
    #: Reads confirmed by ReadIndex.
    read_states: tuple[ReadState, ...] = ()
    #: Entries to append to stable storage (they may replace stored entries from their
    #: first index on).
    entries: tuple[Entry, ...] = ()
    #: A snapshot from the leader to install.
    snapshot: Snapshot | None = None
    #: Entries committed and not yet applied.
    committed_entries: tuple[Entry, ...] = ()
    #: Messages to send, after persisting.
    messages: tuple[Message, ...] = ()
    #: Must the writes reach the disk before sending? (Term, vote or entries changed.)
    must_sync: bool = False

    def is_empty(self) -> bool:
        return self == Ready()


# --8<-- [end:ready]


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of a node's state, for status displays and tests."""

    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    last_index: int
    conf_state: ConfState
    lead_transferee: int
    #: Per member, only on a leader.
    progress: dict[int, PeerStatus] = field(default_factory=dict)


class RawNode:
    """A Raft node without I/O: feed it ticks and messages, take its `Ready`s."""

    def __init__(self, config: Config, storage: Storage, rng: RandomSource) -> None:
        """A node that reads its persisted state (hard state, log, configuration) from
        ``storage`` and draws its election timeouts from ``rng`` (a seeded
        ``random.Random``)."""
        self.raft = Raft(config, storage, rng)
        self._prev_soft_state = self._soft_state()
        self._prev_hard_state = self.raft.hard_state()
        self._outstanding: Ready | None = None
        self._steps_on_advance: list[Message] = []

    def bootstrap(self, voters: Sequence[int], contexts: Mapping[int, bytes] | None = None) -> None:
        """Start a new cluster of ``voters`` on empty storage, as etcd's ``StartNode`` does.

        The members are written into the log as its first entries, one `ConfChange` each,
        committed at term 1. A node that joins later replays them and learns the whole
        configuration from the log, the way it learns everything else. They come back in the
        first Ready as entries to persist and committed entries to apply (applying them
        again is harmless: adding a member twice changes nothing). ``contexts`` gives each
        voter's change a context (etcd puts the member's record there, ``raft.Peer.Context``).

        Raises:
            ValueError: no voters, or the storage is not empty.
        """
        raft = self.raft
        if not voters:
            raise ValueError("must provide at least one voter to bootstrap")
        if raft.log.storage.last_index() != 0:
            raise ValueError("can't bootstrap a nonempty Storage")
        # Nothing is persisted yet: the first Ready must carry the hard state.
        self._prev_hard_state = HardState()
        raft.become_follower(1, 0)
        contexts = contexts or {}
        changes = [
            ConfChange(
                type=ConfChangeType.ADD_NODE, node_id=voter, context=contexts.get(voter, b"")
            )
            for voter in voters
        ]
        raft.log.append(
            [
                Entry(term=1, index=i + 1, type=EntryType.CONF_CHANGE, data=change.marshal())
                for i, change in enumerate(changes)
            ]
        )
        raft.log.committed = len(changes)
        for change in changes:
            raft.apply_conf_change(change)

    # -- a few things worth reading directly ----------------------------------------------

    @property
    def id(self) -> int:
        return self.raft.id

    @property
    def role(self) -> Role:
        return self.raft.role

    @property
    def term(self) -> int:
        return self.raft.term

    @property
    def lead(self) -> int:
        return self.raft.lead

    # --8<-- [start:accessors]
    # -- reading the core: what a driver may know of it, read-only -------------------------
    # A driver (the server's replica, the simulator, the TUI) reads the core only through
    # these; `raft` itself is the core's inside, and a test fails if a module outside
    # kv.raft reaches into it.

    @property
    def commit_index(self) -> int:
        """The highest index known to be committed (persisted or not here yet)."""
        return self.raft.log.committed

    @property
    def applied_index(self) -> int:
        """The highest index handed out to be applied and acknowledged with `advance`."""
        return self.raft.log.applied

    @property
    def is_learner(self) -> bool:
        """Is this node a learner in its current configuration (it never votes)?"""
        return self.raft.is_learner

    def first_index(self) -> int:
        """The first index still in the log (the one after the snapshot)."""
        return self.raft.log.first_index()

    def last_index(self) -> int:
        """The last index in the log, persisted or not."""
        return self.raft.log.last_index()

    def term_at(self, index: int) -> int:
        """The term of the entry at ``index`` (the snapshot's term at its index).

        Raises:
            CompactedError: ``index`` is before the snapshot.
            UnavailableError: ``index`` is past the last entry.
        """
        return self.raft.log.term(index)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """The entries with indexes in [lo, hi), persisted or not."""
        return self.raft.log.slice(lo, hi)

    def all_entries(self) -> list[Entry]:
        """Every entry in the log, persisted or not."""
        return self.raft.log.all_entries()

    def unpersisted_entries(self) -> tuple[Entry, ...]:
        """The log's tail that no `advance` has reported persisted yet (a crash loses it)."""
        return tuple(self.raft.log.unstable.entries)

    def hard_state(self) -> HardState:
        """Term, vote and commit as they are now (persisted once a Ready carried them)."""
        return self.raft.hard_state()

    def conf_state(self) -> ConfState:
        """The configuration in force: voters and learners."""
        return self.raft.tracker.conf_state()

    def has_committed_to_apply(self) -> bool:
        """Are there committed entries not yet handed out to be applied?"""
        return self.raft.log.has_next_committed_entries()

    def election_timer(self) -> tuple[int, int]:
        """(ticks elapsed, ticks at which it fires) of the election timer; a leader's counts
        toward its CheckQuorum round instead (§6.2 of the thesis: it steps down if a round
        passes without hearing from a quorum)."""
        return self.raft.election_elapsed, self.raft.randomized_election_timeout

    # --8<-- [end:accessors]

    # -- inputs ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick (etcd: one ``--heartbeat-interval``)."""
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now, as if the election timeout had passed."""
        self.raft.step(Message(type=MessageType.HUP))

    def expire_election_in(self, ticks: int) -> None:
        """Make the election timer fire after ``ticks`` more ticks, unless something resets
        it first (a leader's message, a vote granted, a role change).

        Raft draws the timeout at random (§5.2) and so does this node; this is for tools that
        set timers by hand -- the TUI's spread and align timers, after RaftScope's. Only a
        follower or candidate uses the timer; a leader ignores it.
        """
        if ticks < 1:
            raise ValueError(f"the election timer must fire after at least one tick: {ticks}")
        self.raft.randomized_election_timeout = self.raft.election_elapsed + ticks

    def propose(self, data: bytes) -> None:
        """Propose ``data`` for the log. It may still be lost (leader change): the
        application learns the outcome only when the entry comes back committed.

        Raises:
            ProposalDroppedError: no leader is known, or the leader refuses proposals now.
        """
        self.raft.step(Message(type=MessageType.PROP, from_=self.id, entries=(Entry(data=data),)))

    def propose_conf_change(self, change: ConfChange) -> None:
        """Propose a membership change; it takes effect when applied (`apply_conf_change`).

        Raises:
            ProposalDroppedError: as for `propose`.
        """
        entry = Entry(type=EntryType.CONF_CHANGE, data=change.marshal())
        self.raft.step(Message(type=MessageType.PROP, from_=self.id, entries=(entry,)))

    def step(self, message: Message) -> None:
        """Feed a message received from a peer.

        Raises:
            StepLocalMessageError: ``message`` is a local-only type.
            StepPeerNotFoundError: a response from a node not in the configuration.
            ProposalDroppedError: a forwarded proposal this node cannot take.
        """
        if message.type in LOCAL_MESSAGES:
            raise StepLocalMessageError(str(message.type))
        if message.type in RESPONSE_MESSAGES and message.from_ not in self.raft.tracker.progress:
            raise StepPeerNotFoundError(f"n{message.from_}")
        self.raft.step(message)

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read (thesis §6.4). When confirmed, a `ReadState` with this
        ``context`` appears in a Ready: the read may be served once the application has
        applied up to its index. Dropped silently when no leader is known (retry)."""
        self.raft.step(Message(type=MessageType.READ_INDEX, entries=(Entry(data=context),)))

    def transfer_leader(self, transferee: int) -> None:
        """Ask the leader to hand leadership to ``transferee`` (thesis §3.10)."""
        self.raft.step(Message(type=MessageType.TRANSFER_LEADER, from_=transferee))

    def report_unreachable(self, node: int) -> None:
        """The transport failed to reach ``node`` (the leader probes it again)."""
        self.raft.step(Message(type=MessageType.UNREACHABLE, from_=node))

    def report_snapshot(self, node: int, *, failed: bool = False) -> None:
        """The transport finished sending a snapshot to ``node``, or gave up."""
        self.raft.step(Message(type=MessageType.SNAP_STATUS, from_=node, reject=failed))

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        """Apply a committed `ConfChange` (from an entry in `Ready.committed_entries`).

        Returns:
            The new configuration, for the application to record (with its snapshot).
        """
        return self.raft.apply_conf_change(change)

    # -- outputs --------------------------------------------------------------------------

    def _soft_state(self) -> SoftState:
        return SoftState(lead=self.raft.lead, role=self.raft.role)

    def has_ready(self) -> bool:
        """Is there anything to persist, send, or apply?"""
        raft = self.raft
        hard_state = raft.hard_state()
        return bool(
            self._soft_state() != self._prev_soft_state
            or (not hard_state.is_empty() and hard_state != self._prev_hard_state)
            or raft.log.unstable.snapshot is not None
            or raft.msgs
            or raft.msgs_after_append
            or raft.log.unstable.entries
            or raft.log.has_next_committed_entries()
            or raft.read_states
        )

    def ready(self) -> Ready:
        """Take the outstanding work. Hand it back with `advance` when done.

        Raises:
            RuntimeError: the previous Ready was not advanced yet.
        """
        if self._outstanding is not None:
            raise RuntimeError("advance the previous Ready before taking another")
        raft = self.raft
        soft_state = self._soft_state()
        hard_state = raft.hard_state()
        # Acknowledgements addressed to ourselves are stepped in advance(), once the state
        # they vouch for is persisted; the rest leave with the other messages.
        own = [m for m in raft.msgs_after_append if m.to == self.id]
        others = [m for m in raft.msgs_after_append if m.to != self.id]
        entries = tuple(raft.log.unstable_entries())
        ready = Ready(
            soft_state=soft_state if soft_state != self._prev_soft_state else None,
            hard_state=hard_state if hard_state != self._prev_hard_state else None,
            read_states=tuple(raft.read_states),
            entries=entries,
            snapshot=raft.log.unstable.snapshot,
            committed_entries=tuple(raft.log.next_committed_entries()),
            messages=(*raft.msgs, *others),
            must_sync=bool(
                entries
                or hard_state.term != self._prev_hard_state.term
                or hard_state.vote != self._prev_hard_state.vote
            ),
        )
        self._prev_soft_state = soft_state
        self._prev_hard_state = hard_state
        raft.msgs = []
        raft.msgs_after_append = []
        raft.read_states = []
        self._steps_on_advance = own
        self._outstanding = ready
        return ready

    # --8<-- [start:advance]
    def advance(self, ready: Ready | None = None) -> None:
        """The last Ready is done: persisted, sent and applied.

        Args:
            ready: the Ready being acknowledged (the outstanding one when None).
        """
        if self._outstanding is None or (ready is not None and ready is not self._outstanding):
            raise RuntimeError("advance() needs the outstanding Ready")
        ready = self._outstanding
        self._outstanding = None
        log = self.raft.log
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
        if ready.snapshot is not None:
            log.stable_snap_to(ready.snapshot.metadata.index)
            log.applied_to(ready.snapshot.metadata.index)
        if ready.committed_entries:
            log.applied_to(ready.committed_entries[-1].index)
        steps, self._steps_on_advance = self._steps_on_advance, []
        for message in steps:
            self.raft.step(message)

    # --8<-- [end:advance]

    def take_events(self) -> list[ev.Event]:
        """The events since the last call, oldest first (see `kv.raft.events`)."""
        events, self.raft.events = self.raft.events, []
        return events

    def status(self) -> Status:
        raft = self.raft
        progress: dict[int, PeerStatus] = {}
        if raft.role is Role.LEADER:
            progress = {member: p.status() for member, p in raft.tracker}
        return Status(
            id=raft.id,
            hard_state=raft.hard_state(),
            soft_state=self._soft_state(),
            applied=raft.log.applied,
            last_index=raft.log.last_index(),
            conf_state=raft.tracker.conf_state(),
            lead_transferee=raft.lead_transferee,
            progress=progress,
        )
