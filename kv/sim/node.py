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
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.lease import Lessor
from kv.mvcc import HistoryEntry, KeyValue, Revision, Store
from kv.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    ProposalDroppedError,
    RawNode,
    Ready,
    Role,
    Snapshot,
    SnapshotOutOfDateError,
    Status,
    StepPeerNotFoundError,
)
from kv.raft import events as ev
from kv.server.applied import apply
from kv.server.applied.leases import AppliedLeases, open_lessor
from kv.server.applied.state_machine import StateMachine
from kv.server.errors import EtcdError
from kv.sim.config import SimConfig
from kv.sim.events import NodeCrashed, NodeLeft, NodeRestarted
from kv.watch import WatchHub

#: What the state machine answers a request with: a response, or etcd's error.
Result = ProtoMessage | EtcdError


@dataclass(frozen=True, slots=True)
class Answer:
    """The member's answer to a client request (``request_id``), ready to go back."""

    request_id: int
    result: Result


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


@dataclass(slots=True)
class _PendingRead:
    request_id: int
    #: None: a ReadIndex round that only confirms leadership (`SimNode.confirm_leadership`).
    key: bytes | None
    asked_at: int
    #: The read index, once ReadIndex confirmed it (the read waits to apply up to it).
    index: int | None = None


@dataclass(slots=True)
class _Server:
    """A member's volatile server state: lost in a crash with the rest of its memory."""

    #: Proposals this member made for clients, by request id, until applied.
    writes: set[int] = field(default_factory=set)
    #: Membership changes this member proposed for the operator, by request id.
    conf_changes: set[int] = field(default_factory=set)
    #: Linearizable reads, by ReadIndex context, until served.
    reads: dict[bytes, _PendingRead] = field(default_factory=dict)
    #: Request ids issued so far in this incarnation.
    issued: int = 0


def request_context(request_id: int) -> bytes:
    """The ReadIndex context of a read: its request id, as etcd uses it (8 bytes)."""
    return request_id.to_bytes(8, "big")


class SimNode:
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
        self._server = _Server()
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
        self._server = _Server()
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
        self._server = _Server()
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
        for context, read in self._server.reads.items():
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
        self._server.issued += 1
        return (self.id << 48) | (self.incarnation << 32) | self._server.issued

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
        self._server.writes.add(request_id)
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
        self._server.conf_changes.add(request_id)
        return None

    def read(self, request_id: int, key: bytes | None, now: int) -> None:
        """Start a linearizable read of ``key`` (thesis §6.4, ReadIndex): it is answered
        once a ReadIndex round confirms an index and the state machine has applied it.
        Without a key, the answer is an empty range: the round only confirmed that this
        member led when it was asked (the lease expiry's check, `kv.lease.expiry`)."""
        context = request_context(request_id)
        self._server.reads[context] = _PendingRead(request_id, key, asked_at=now)
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
            read = self._server.reads.get(state.request_ctx)
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
            if change.id in self._server.conf_changes:
                self._server.conf_changes.discard(change.id)
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
        if result is None or request_id not in self._server.writes:
            return None  # proposed by another member (or an earlier life of this one)
        self._server.writes.discard(request_id)
        return Answer(request_id, result)

    # --8<-- [end:apply]

    def _serve_reads(self) -> list[Answer]:
        machine = self.machine
        assert machine is not None
        answers = []
        for context, read in list(self._server.reads.items()):
            if read.index is not None and read.index <= self.applied:
                del self._server.reads[context]
                response = rpc_pb2.RangeResponse()
                if read.key is not None:
                    request = rpc_pb2.RangeRequest(key=read.key)
                    response = apply.apply_range(machine.store, request)
                answers.append(Answer(read.request_id, response))
        return answers

    def take_events(self) -> list[ev.Event]:
        return self.raw.take_events() if self.raw is not None else []

    # -- inspection (for tests and the TUI) ---------------------------------------------------

    @property
    def role(self) -> Role | None:
        """The node's role, or None while it is down."""
        return self.raw.role if self.raw is not None else None

    @property
    def term(self) -> int:
        """The current term (the persisted one while down)."""
        return self.raw.term if self.raw is not None else self.storage.hard_state.term

    @property
    def lead(self) -> int:
        """Whom the node believes leads (0: nobody; always 0 while down)."""
        return self.raw.lead if self.raw is not None else 0

    @property
    def commit(self) -> int:
        """The commit index (the persisted one while down)."""
        if self.raw is not None:
            return self.raw.commit_index
        return self.storage.hard_state.commit

    @property
    def hard_state(self) -> HardState:
        """The hard state in memory (the persisted one while down)."""
        return self.raw.hard_state() if self.raw is not None else self.storage.hard_state

    @property
    def log(self) -> list[Entry]:
        """Every entry of the log, persisted or not (only the persisted ones while down)."""
        if self.raw is not None:
            return self.raw.all_entries()
        return self.persisted_log

    @property
    def persisted_log(self) -> list[Entry]:
        """The entries on disk."""
        first, last = self.storage.first_index(), self.storage.last_index()
        return self.storage.entries(first, last + 1) if last >= first else []

    @property
    def last_index(self) -> int:
        if self.raw is not None:
            return self.raw.last_index()
        return self.storage.last_index()

    @property
    def election_timer(self) -> tuple[int, int] | None:
        """(ticks elapsed, ticks at which it fires) of the election timer (None while down).
        A leader's counts toward its CheckQuorum instead."""
        if self.raw is None:
            return None
        return self.raw.election_timer()

    @property
    def store(self) -> Store | None:
        """The state machine's store (None while down)."""
        return self.machine.store if self.machine is not None else None

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

    def lessor(self) -> Lessor:
        """This member's lessor (chapter 7): the leases it applied; deadlines while it leads."""
        machine = self.machine
        if machine is None:
            raise RuntimeError(f"n{self.id} is down")
        return machine.leases.lessor

    def get(self, key: str) -> str | None:
        """The value of ``key`` in this member's store (a local read, for inspection; None
        if there is no such key or the member is down)."""
        if self.machine is None:
            return None
        kvs = self.machine.store.range(key.encode()).kvs
        return kvs[0].value.decode() if kvs else None

    def status(self) -> Status | None:
        return self.raw.status() if self.raw is not None else None


def _not_started() -> float:
    raise RuntimeError("the member has not started: it has no clock yet")


def decode_request(data: bytes) -> InternalRaftRequest:
    """An entry's data as the request it carries."""
    try:
        return InternalRaftRequest.FromString(data)
    except DecodeError as error:
        raise ValueError(f"entry data is not an InternalRaftRequest: {data!r}") from error


def encode_state(machine: StateMachine) -> bytes:
    """A snapshot of the state machine's store: its history, as JSON (the real server ships
    its SQLite backend instead; the simulator's store lives in memory)."""
    history = [
        [
            revision.main,
            revision.sub,
            entry.tombstone,
            entry.kv.key.hex(),
            entry.kv.value.hex(),
            entry.kv.create_revision,
            entry.kv.mod_revision,
            entry.kv.version,
            entry.kv.lease,
        ]
        for revision, entry in machine.store.history.items()
    ]
    state: dict[str, object] = {
        "history": history,
        "compact_revision": machine.store.compact_revision,
    }
    leases = [[lease.id, lease.ttl] for lease in machine.leases.lessor]
    if leases:  # (only then: a snapshot without leases stays byte for byte what it was)
        state["leases"] = leases
    return json.dumps(state, separators=(",", ":")).encode()


def decode_state(data: bytes, index: int, leases: AppliedLeases | None = None) -> StateMachine:
    """The state machine `encode_state` saved, as of log ``index``, its leases read back
    into ``leases`` (None: a new in-memory lessor with no clock)."""
    state = json.loads(data)
    history: dict[Revision, HistoryEntry] = {}
    for main, sub, tombstone, key, value, created, modified, version, lease in state["history"]:
        kv = KeyValue(bytes.fromhex(key), bytes.fromhex(value), created, modified, version, lease)
        history[Revision(main, sub)] = HistoryEntry(kv, tombstone)
    store = Store(history, compact_revision=state["compact_revision"])
    machine = StateMachine(store, applied_index=index, leases=leases)
    # The leases and their keys, as a restarted etcd recovers them from its backend.
    open_lessor(machine.leases.lessor, _SavedLeases(state.get("leases", [])), store)
    return machine


@dataclass(slots=True)
class _SavedLeases:
    """A snapshot's leases, as the `LeaseTable` `open_lessor` reads them from."""

    saved: list[list[int]]

    def leases(self) -> list[tuple[int, int]]:
        return [(lease_id, ttl) for lease_id, ttl in self.saved]

    def put_lease(self, lease_id: int, ttl: int) -> None:
        raise NotImplementedError("a snapshot's leases are read, never written")

    def delete_lease(self, lease_id: int) -> None:
        raise NotImplementedError("a snapshot's leases are read, never written")
