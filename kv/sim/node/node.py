"""One simulated member: a Raft node, its disk, its state machine, and its server side.

A `SimNode` is what one etcd member is, minus the sockets and files:

* a `kv.raft.RawNode` -- the consensus core, with everything not yet persisted (the log's
  unstable tail, a hard state not yet saved) in its memory;
* a `kv.raft.MemoryStorage` that plays the *disk*: it holds only what the Ready loop
  persisted, and it is all that survives a crash;
* a `kv.server.applied.state_machine.StateMachine` over an in-memory `kv.mvcc.Store`: the very code
  the real server applies committed entries with, fed the same ``InternalRaftRequest`` bytes;
* the server's bookkeeping for clients: proposals waiting to be applied (by request id, as
  etcd's ``wait.Wait``) and linearizable reads waiting for ReadIndex.

The Ready loop is split in two, because writing to disk takes (virtual) time:
`SimNode.begin_ready` takes a `kv.raft.Ready` -- the write starts -- and
`SimNode.finish_ready`, when the cluster's clock says the write is done, does the rest in
the order the contract demands (`kv.raft.node`): persist hard state, entries and snapshot;
then send the messages; then apply the committed entries and serve the reads; then advance.
Between the two the node keeps taking ticks and messages, as a real one does while it waits
for fsync; a crash in between loses the write, exactly what "not yet persisted" means.

A restart builds a new `RawNode` on the same storage and a state machine from the disk's
snapshot (empty if there is none); the first Ready hands back every committed entry after
it, and applying them again rebuilds the store (etcd replays the log after its backend's
consistent index; our backend is memory, so from the snapshot).

With ``SimConfig.snapshot_every``, a member snapshots its state machine (`encode_state`)
every so many applied entries and compacts its log, keeping ``snapshot_keep`` entries; a
follower that needs what was compacted gets the leader's snapshot in a MsgSnap and restores
its state machine from it (`decode_state`), as etcd does with its backend file.

Membership (`kv.sim.membership`): a member proposes a `kv.raft.ConfChange` for the operator
with its request id in ``ConfChange.id``, applies every committed change through
`kv.raft.RawNode.apply_conf_change`, and answers the operator when it applies its own (as
etcd's ``AddMember`` waits for ``cc.ID``). A member that applies its own removal reports it
(`SimNode.removed`) and the cluster shuts it down, as etcd stops a removed member's server.

What a member shows the tests and the TUI (role, term, log, store, ...) is `kv.sim.node.view`'s,
which `SimNode` inherits; what it keeps for its clients (`PendingRequests`, `Answer`) is
`kv.sim.node.pending`'s; its snapshots' format (`encode_state`, `decode_state`) is
`kv.sim.node.state_codec`'s.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.mvcc import Store
from kv.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    ProposalDroppedError,
    RawNode,
    Ready,
    Role,
    Snapshot,
    SnapshotOutOfDateError,
    StepPeerNotFoundError,
)
from kv.raft import events as ev
from kv.server.applied import apply
from kv.server.applied.leases import AppliedLeases
from kv.server.applied.state_machine import StateMachine
from kv.sim.config import SimConfig
from kv.sim.node.pending import Answer, PendingRead, PendingRequests, request_context
from kv.sim.node.state_codec import decode_request, decode_state, encode_state
from kv.sim.node.view import NodeView
from kv.sim.timeline.events import NodeCrashed, NodeLeft, NodeRestarted
from kv.watch import WatchHub


@dataclass(frozen=True, slots=True)
class ReadyOutcome:
    """What finishing a Ready produced, for the cluster to deliver and check."""

    messages: tuple[Message, ...]
    #: Every entry applied, in order (empty ones and conf changes included).
    applied: tuple[Entry, ...]
    answers: tuple[Answer, ...]
    #: Membership changes this member proposed and has now applied: (request id, the
    #: configuration after it), for the operator.
    conf_answers: tuple[tuple[int, ConfState], ...] = ()


class SimNode(NodeView):
    """One member of a simulated cluster (see the module docstring)."""

    def __init__(self, node_id: int, config: SimConfig, storage: MemoryStorage) -> None:
        self.id = node_id
        self.config = config
        #: The disk: only what the Ready loop persisted. It survives crashes.
        self.storage = storage
        self.raw: RawNode | None = None
        self.machine: StateMachine | None = None
        #: Bumped by every crash: timers and writes of an earlier life are ignored.
        self.incarnation = 0
        #: The Ready being written to disk, if any.
        self.writing: Ready | None = None
        #: The index of the last entry applied (in this incarnation).
        self.applied = 0
        #: This member applied its own removal from the cluster (it is shut down for good).
        self.removed = False
        #: A configuration change was applied since the last snapshot (see `_maybe_snapshot`).
        self._conf_changed = False
        self._conf_answers: list[tuple[int, ConfState]] = []
        self._pending = PendingRequests()
        #: The watch hub of this life, once something watches here (`watches`).
        self._hub: WatchHub | None = None
        #: The cluster's clock, in seconds: the leader's lessor keeps deadlines on it.
        self._clock: Callable[[], float] = _not_started

    def __repr__(self) -> str:
        state = f"{self.role} term {self.term}" if self.up else "down"
        return f"SimNode(n{self.id}, {state}, commit {self.commit}, applied {self.applied})"

    # -- life and death -------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.raw is not None

    def start(self, rng: random.Random, clock: Callable[[], float]) -> NodeRestarted:
        """Start (or restart) from the disk, with an empty state machine; ``clock()`` is the
        cluster's time in seconds, for the deadlines its lessor keeps while it leads."""
        if self.raw is not None:
            raise RuntimeError(f"n{self.id} is already running")
        self._clock = clock
        self.raw = RawNode(self.config.raft_config(self.id), self.storage, rng)
        self._restore(self.storage.snapshot())
        self.writing = None
        self._pending = PendingRequests()
        hard_state = self.storage.hard_state
        return NodeRestarted(self.id, hard_state.term, self.storage.last_index(), hard_state.commit)

    # --8<-- [start:crash]
    def crash(self, torn: random.Random | None = None) -> NodeCrashed:
        """Stop, losing everything not persisted: unstable entries, an unsaved hard state, the
        Ready being written, the state machine, the clients' pending requests.

        With ``torn``, a write in progress leaves a prefix on disk (drawn from ``torn``): some
        of its entries, then its hard state only if every entry made it; a snapshot write is
        all or nothing.
        """
        raw = self._running()
        kept = 0
        ready = self.writing
        if torn is not None and ready is not None and ready.snapshot is None:
            records = len(ready.entries) + (ready.hard_state is not None)
            cut = torn.randint(0, records)
            kept = min(cut, len(ready.entries))
            self.storage.append(ready.entries[:kept])
            if ready.hard_state is not None and cut == records:
                self.storage.set_hard_state(ready.hard_state)
        unstable = raw.unpersisted_entries()
        lost_entries = sum(
            1
            for entry in unstable
            if self.storage.last_index() < entry.index
            or self.storage.term(entry.index) != entry.term
        )
        lost_hard_state = raw.hard_state() != self.storage.hard_state
        event = NodeCrashed(self.id, lost_entries, lost_hard_state, kept)
        self._stop()
        return event

    # --8<-- [end:crash]

    def leave(self) -> NodeLeft:
        """Shut down for good after applying its own removal (etcd stops the server). Every
        Ready it took was finished, so nothing is lost; its disk stays for inspection."""
        self._running()
        self._stop()
        return NodeLeft(self.id, self.storage.last_index())

    def _stop(self) -> None:
        self.raw = None
        self.machine = None
        self.applied = 0
        self.writing = None
        self.incarnation += 1
        self._conf_answers = []
        self._pending = PendingRequests()
        self._hub = None  # a crash breaks every watch stream; clients resume elsewhere

    def _running(self) -> RawNode:
        if self.raw is None:
            raise RuntimeError(f"n{self.id} is down")
        return self.raw

    # -- inputs ---------------------------------------------------------------------------

    def tick(self, now: int) -> None:
        """One heartbeat interval passed; reads still unconfirmed ask Raft again."""
        raw = self._running()
        raw.tick()
        for context, read in self._pending.reads.items():
            if read.index is None and now - read.asked_at >= self.config.read_retry_ms:
                read.asked_at = now
                raw.read_index(context)

    def step(self, message: Message) -> None:
        """A message from a peer. What the core refuses here is dropped, as etcd drops it: a
        forwarded proposal the node cannot take, an answer from a node it does not know."""
        with contextlib.suppress(ProposalDroppedError, StepPeerNotFoundError):
            self._running().step(message)

    def next_request_id(self) -> int:
        """A request id no other member or incarnation issues (etcd: ``idutil.Generator``,
        the member id in the high bits)."""
        self._pending.issued += 1
        return (self.id << 48) | (self.incarnation << 32) | self._pending.issued

    def propose(self, request_id: int, request: InternalRaftRequest) -> str | None:
        """Propose a client's write; it is answered when applied (`finish_ready`).

        Returns:
            None, or why the core refused it at once (then nothing was appended anywhere,
            and the client may safely try again).
        """
        request.header.ID = request_id
        try:
            self._running().propose(request.SerializeToString())
        except ProposalDroppedError as error:
            return str(error)
        self._pending.writes.add(request_id)
        return None

    def propose_conf_change(self, request_id: int, change: ConfChange) -> str | None:
        """Propose a membership change for the operator; it is answered when this member
        applies it (`ReadyOutcome.conf_answers`). Returns None, or why the core refused.

        The core may also accept it and then turn it into an empty entry, if another change
        is still pending (thesis §4.1): then no answer ever comes, and the operator asks again.
        """
        change = ConfChange(change.type, change.node_id, change.context, id=request_id)
        try:
            self._running().propose_conf_change(change)
        except ProposalDroppedError as error:
            return str(error)
        self._pending.conf_changes.add(request_id)
        return None

    def read(self, request_id: int, key: bytes | None, now: int) -> None:
        """Start a linearizable read of ``key`` (thesis §6.4, ReadIndex): it is answered
        once a ReadIndex round confirms an index and the state machine has applied it.
        Without a key, the answer is an empty range: the round only confirmed that this
        member led when it was asked (the lease expiry's check, `kv.lease.expiry`)."""
        context = request_context(request_id)
        self._pending.reads[context] = PendingRead(request_id, key, asked_at=now)
        self._running().read_index(context)

    # -- the Ready loop -----------------------------------------------------------------------

    def begin_ready(self) -> Ready | None:
        """Take the node's next Ready, if it has one and is not writing the previous one."""
        raw = self.raw
        if raw is None or self.writing is not None or not raw.has_ready():
            return None
        self.writing = raw.ready()
        return self.writing

    # --8<-- [start:finish-ready]
    def finish_ready(self) -> ReadyOutcome:
        """The write of the current Ready is on disk: persist it for real, then hand out its
        messages, apply its committed entries, serve reads, and advance."""
        raw = self._running()
        ready = self.writing
        if ready is None:
            raise RuntimeError(f"n{self.id} is not writing a Ready")
        self.writing = None
        if ready.soft_state is not None and raw.role is not Role.LEADER:
            self.lessor().demote()  # chapter 7: only a leader keeps lease deadlines
        # 1. Persist (etcd's raftNode: the snapshot, then wal.Save(hardstate, entries)).
        if ready.snapshot is not None:
            self.storage.apply_snapshot(ready.snapshot)
        self.storage.append(ready.entries)
        if ready.hard_state is not None:
            self.storage.set_hard_state(ready.hard_state)
        # 2. Send: the cluster delivers ready.messages (returned below).
        # 3. Apply (a snapshot first), then serve the reads the state machine has caught up
        #    with; maybe take a snapshot of our own.
        if ready.snapshot is not None:
            self._restore(ready.snapshot)
        answers = [answer for entry in ready.committed_entries if (answer := self._apply(entry))]
        for state in ready.read_states:
            read = self._pending.reads.get(state.request_ctx)
            if read is not None and read.index is None:
                read.index = state.index
        answers.extend(self._serve_reads())
        self._maybe_snapshot()
        # 4. Acknowledge.
        raw.advance(ready)
        conf_answers, self._conf_answers = tuple(self._conf_answers), []
        return ReadyOutcome(ready.messages, ready.committed_entries, tuple(answers), conf_answers)

    # --8<-- [end:finish-ready]

    def _restore(self, snapshot: Snapshot) -> None:
        """The state machine as of ``snapshot`` (a fresh one for the empty snapshot)."""
        index = snapshot.metadata.index
        leases = AppliedLeases(self.config.new_lessor(), clock=self._clock)
        if index:
            self.machine = decode_state(snapshot.data, index, leases)
        else:
            self.machine = StateMachine(Store(), leases=leases)
        self.applied = index
        if self._hub is not None:  # a leader's snapshot: the watchers read on from it
            self._hub.restore(self.machine.store)

    # --8<-- [start:snapshot]
    def _maybe_snapshot(self) -> None:
        """Every ``snapshot_every`` applied entries, and after every configuration change:
        snapshot, then compact the log.

        A snapshot records the configuration too, and a member added later must find itself
        in the snapshot the leader sends it, or it refuses it (`kv.raft.follower.restore`).
        etcd builds the snapshot it sends afresh, at its applied index, for the same reason.
        """
        every = self.config.snapshot_every
        storage, machine, raw = self.storage, self.machine, self._running()
        assert machine is not None
        if not every:
            return
        behind = self.applied - storage.snapshot().metadata.index
        if behind < every and not (self._conf_changed and behind > 0):
            return
        self._conf_changed = False
        conf_state = raw.conf_state()
        with contextlib.suppress(SnapshotOutOfDateError):
            storage.create_snapshot(self.applied, conf_state, encode_state(machine))
        compact_to = self.applied - self.config.snapshot_keep
        if compact_to >= storage.first_index():
            storage.compact(compact_to)

    # --8<-- [end:snapshot]

    # --8<-- [start:apply]
    def _apply(self, entry: Entry) -> Answer | None:
        raw, machine = self._running(), self.machine
        assert machine is not None
        self.applied = entry.index
        if entry.type is EntryType.CONF_CHANGE:
            change = ConfChange.unmarshal(entry.data)
            conf_state = raw.apply_conf_change(change)
            self._conf_changed = True
            if change.type is ConfChangeType.REMOVE_NODE and change.node_id == self.id:
                self.removed = True
            if change.id in self._pending.conf_changes:
                self._pending.conf_changes.discard(change.id)
                self._conf_answers.append((change.id, conf_state))
            return None
        if not entry.data:  # a new leader's empty entry: chapter 7's lessor takes over
            if raw.role is Role.LEADER:
                extend = self.config.lease_extension_ms / 1000
                machine.leases.lessor.promote(self._clock(), extend)
            return None
        request = decode_request(entry.data)
        result = machine.apply(entry.index, request)
        request_id = request.header.ID
        if result is None or request_id not in self._pending.writes:
            return None  # proposed by another member (or an earlier life of this one)
        self._pending.writes.discard(request_id)
        return Answer(request_id, result)

    # --8<-- [end:apply]

    def _serve_reads(self) -> list[Answer]:
        machine = self.machine
        assert machine is not None
        answers = []
        for context, read in list(self._pending.reads.items()):
            if read.index is not None and read.index <= self.applied:
                del self._pending.reads[context]
                response = rpc_pb2.RangeResponse()
                if read.key is not None:
                    request = rpc_pb2.RangeRequest(key=read.key)
                    response = apply.apply_range(machine.store, request)
                answers.append(Answer(read.request_id, response))
        return answers

    def take_events(self) -> list[ev.Event]:
        return self.raw.take_events() if self.raw is not None else []

    # -- watches (chapter 8) ---------------------------------------------------------------

    @property
    def hub(self) -> WatchHub | None:
        """The watch hub of this life, if anything watches here (None while down)."""
        return self._hub

    def watches(self) -> WatchHub:
        """This member's watch hub over its store (chapter 8), made on first use.

        It lives as long as this life of the member: a crash breaks every stream on it (after
        a restart, a new hub watches the rebuilt store), and a leader's snapshot re-points it
        at the restored store (`kv.watch.WatchHub.restore`), as etcd's ``watchableStore``.
        """
        machine = self.machine
        if machine is None:
            raise RuntimeError(f"n{self.id} is down")
        if self._hub is None:
            self._hub = WatchHub(machine.store)
        return self._hub


def _not_started() -> float:
    raise RuntimeError("the member has not started: it has no clock yet")
