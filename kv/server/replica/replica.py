"""A replica: one member's Raft loop, driving the pure core with real time, disk and network
(chapters 4 and 5).

`kv.raft.RawNode` does no I/O; this class does all of it, in one asyncio task, in the order
the `kv.raft.Ready` contract demands (etcd: ``etcdserver/raft.go``, ``raftNode.start``):

1. a timer calls ``tick()`` every ``--heartbeat-interval``; messages from peers
   (`kv.server.peers.transport`) are stepped as they arrive; clients' writes are proposed;
2. whenever the core has a Ready, the loop **persists** it (`kv.server.disk.raft_disk`: WAL records,
   fsynced in a worker thread while the event loop goes on), then **sends** its messages,
   then **applies** its committed entries to the state machine and commits the backend with
   the consistent index, then **advances**.

A replica answers a write once its entry is *committed* -- on the disks of a majority (for a
member alone, its own disk: chapter 2's durable write path is this loop) -- and applied here.
A write proposed on a follower is forwarded by the core to the leader (a MsgProp); the follower
answers its client when it applies the entry, recognising it by its request id (etcd's
``wait.Wait``).

Linearizable reads use ReadIndex (Raft thesis §6.4): the read waits until the leader has
confirmed it still leads *and* this member has applied up to the leader's commit index at
that moment. Reads are batched: one ReadIndex round serves every read that arrived before
it started (etcd: ``linearizableReadLoop``).

Failure is fail-stop, as in chapter 2: if the log or the backend cannot be written, the
member stops taking writes and answers "etcdserver: server stopped".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.raftpb import raft_pb2
from kv.backend import Backend
from kv.raft import (
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    Message,
    ProposalDroppedError,
    RaftError,
    RawNode,
    Ready,
    Role,
    Snapshot,
    StepPeerNotFoundError,
)
from kv.server import errors, raft_wire
from kv.server.applied.applied_state import (
    commit_applied,
    copy_backend,
    open_state_machine,
    swap_backend,
)
from kv.server.applied.members import MemberStore
from kv.server.applied.state_machine import Result, StateMachine
from kv.server.disk.raft_disk import (
    SNAPSHOT_CATCH_UP_ENTRIES,
    RaftDisk,
    SnapshotPolicy,
    received_backend_path,
)
from kv.server.errors import EtcdError
from kv.server.peers.transport import REMOVED_TEXT, PeerTransport, RaftInbox
from kv.server.replica import duties
from kv.server.replica.reads import ReadRounds
from kv.server.replica.waiters import IndexWaiters, Waiters, request_ids

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timing:
    """etcd's --heartbeat-interval and --election-timeout, in milliseconds."""

    heartbeat_ms: int = 100
    election_ms: int = 1000

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


class Replica:
    """One member's Raft loop, its state machine, and the clients waiting on both."""

    def __init__(
        self,
        *,
        raw: RawNode,
        disk: RaftDisk,
        backend: Backend,
        machine: StateMachine,
        transport: PeerTransport,
        timing: Timing,
        policy: SnapshotPolicy,
        catch_up_entries: int = SNAPSHOT_CATCH_UP_ENTRIES,
    ) -> None:
        """A replica over ``raw`` and its ``disk``, applying to ``machine`` (over ``backend``),
        talking to its peers through ``transport``, which it hands what they send."""
        self.raw = raw
        self.disk = disk
        self.backend = backend
        self.machine = machine
        self.timing = timing
        self.policy = policy
        self.catch_up_entries = catch_up_entries
        self.member_id = raw.id
        self.cluster_id = disk.cluster_id
        self.transport = transport
        transport.attach(
            RaftInbox(
                deliver=self.deliver,
                unreachable=self.report_unreachable,
                snapshot_status=self.report_snapshot,
                snapshot=self.merged_snapshot,
                members=self.member_list,
                is_removed=lambda member_id: self.members.is_removed(member_id),
                removed=self._mark_removed,
            )
        )
        #: The index and term of the last entry applied here. etcd stamps responses with
        #: that term (not Raft's current one, which a candidate may have raised).
        self.applied = disk.snapshot_index
        self.applied_term = disk.storage.snapshot().metadata.term
        self.failure: BaseException | None = None
        #: This member was removed from the cluster; it serves nothing more.
        self.removed = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._request_ids = request_ids(self.member_id, time.time())
        self._writes: Waiters[Result] = Waiters()
        self._conf_changes: Waiters[None] = Waiters()
        self._applied_waiters = IndexWaiters()
        self.reads = ReadRounds(
            ask=self._ask_read_index,
            contexts=self._request_ids,  # etcd uses its request ids as contexts too
            now=lambda: asyncio.get_running_loop().time(),
            retry_after=2 * timing.tick_seconds,
        )
        self._last_leader_change = 0.0
        self.leader_changes = 0
        self._campaign_when_applied = False
        #: The leader's proposal of the cluster version, while it is under way.
        self._version_task: asyncio.Task[None] | None = None

    # -- running ------------------------------------------------------------------------

    def add_task(self, task: asyncio.Task[None]) -> None:
        """A task of this member's that `stop` cancels (`kv.server.replica.duties` starts some)."""
        self._tasks.append(task)

    def start(self) -> None:
        self._advance_ticks()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._ticker(), name=f"raft ticks {self.member_id:x}"),
            loop.create_task(self._ready_loop(), name=f"raft loop {self.member_id:x}"),
        ]
        self._sync_peers()
        self._wake.set()  # a bootstrapped or restarted node has a Ready waiting

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("the raft loop failed while stopping")
        self._fail_waiters(errors.STOPPED)
        await self.transport.close()
        self.disk.close()
        self.backend.close()

    def _advance_ticks(self) -> None:
        """A member alone in its configuration campaigns as soon as it has applied the
        configuration from its log (Raft refuses to campaign while configuration changes
        wait to be applied; see `_ready_loop`), instead of after a whole election timeout
        (etcd: --initial-election-tick-advance). Members of a larger cluster wait the full
        randomized timeout: started together, they would otherwise time out together and
        split the vote, and a restarted member would depose a healthy leader before its
        first heartbeat arrived (without PreVote, etcd 3.4's default).
        """
        self._campaign_when_applied = True

    def _campaign_if_alone(self) -> None:
        if self.raw.has_committed_to_apply():
            return  # the configuration is not applied yet
        self._campaign_when_applied = False
        voters = self.raw.conf_state().voters
        if voters == (self.member_id,) and not self.raw.lead:
            self.raw.campaign()

    async def _ticker(self) -> None:
        interval = self.timing.tick_seconds
        while True:
            await asyncio.sleep(interval)
            self.raw.tick()
            self.reads.retry_if_lost()
            self._wake.set()

    # --8<-- [start:ready_loop]
    async def _ready_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.raw.has_ready():
                ready = self.raw.ready()
                # A leader may send first and write its disk meanwhile (see `_sends_early`).
                early = self._sends_early()
                try:
                    if early:
                        self.transport.send(ready.messages)
                    await self.disk.persist(ready)  # 1. persist (fsync when must_sync)
                    if not early:
                        self.transport.send(ready.messages)  # 2. send
                    self._apply(ready)  # 3. apply, commit the backend
                except Exception as error:
                    self._stop_writes(error)
                    return
                self.raw.advance(ready)  # 4. acknowledge
                for event in self.raw.take_events():  # "n2 became candidate at term 3"
                    log.debug("raft: %s", event)
                if self._campaign_when_applied:
                    self._campaign_if_alone()

    # --8<-- [end:ready_loop]

    def _sends_early(self) -> bool:
        """May this Ready's messages leave before it is persisted? Yes on a leader (Raft
        thesis §10.2.1; etcd's server does the same): they are appends, heartbeats and
        answers that promise nothing about the leader's own disk -- its term and vote were
        persisted before it campaigned, and its acknowledgement of its own new entries is
        stepped only in `advance`, after they are written. So the leader's fsync runs while
        the followers write theirs, and a put waits for the slower of the two, not both."""
        return self.raw.role is Role.LEADER

    def _stop_writes(self, error: BaseException) -> None:
        log.error("stopped taking writes: %s (restart the member to recover)", error)
        self.failure = error
        self._fail_waiters(errors.STOPPED)

    def _fail_waiters(self, error: EtcdError) -> None:
        self.reads.fail(error)
        self._writes.fail(error)
        self._conf_changes.fail(error)
        self._applied_waiters.fail(error)

    # -- inputs -------------------------------------------------------------------------

    def deliver(self, message: Message) -> None:
        """A message from a peer (the transport calls this)."""
        # etcd drops these too: Raft's own retries cover them.
        with contextlib.suppress(ProposalDroppedError, StepPeerNotFoundError):
            self.raw.step(message)
        self._wake.set()

    def report_unreachable(self, member_id: int) -> None:
        self.raw.report_unreachable(member_id)
        self._wake.set()

    def report_snapshot(self, member_id: int, ok: bool) -> None:
        self.raw.report_snapshot(member_id, failed=not ok)
        self._wake.set()

    # --8<-- [start:propose]
    async def propose(self, request: InternalRaftRequest) -> Result:
        """Replicate ``request`` and return what applying it gave; raise etcd's error when it
        cannot be proposed, or is not applied within the request timeout."""
        self._check_serving()
        deadline = asyncio.get_running_loop().time() + self.timing.request_timeout
        await self._wait_for_leader(deadline)
        request_id = next(self._request_ids)
        request.header.ID = request_id
        future = self._writes.register(request_id)
        try:
            self.raw.propose(request.SerializeToString())
        except ProposalDroppedError as error:
            self._writes.forget(request_id)
            raise errors.PROPOSAL_DROPPED from error
        self._wake.set()
        try:
            return await asyncio.wait_for(future, deadline - asyncio.get_running_loop().time())
        except TimeoutError:
            raise self._timeout_error() from None
        finally:
            self._writes.forget(request_id)

    async def _wait_for_leader(self, deadline: float) -> None:
        """Hold a proposal until some leader is known, as etcd 3.4 does (its Raft node does
        not take proposals while there is none); past the deadline, etcd's client sees its
        context's error."""
        loop = asyncio.get_running_loop()
        while not self.raw.lead:
            if loop.time() >= deadline:
                raise errors.DEADLINE_EXCEEDED
            await asyncio.sleep(self.timing.tick_seconds)
            self._check_serving()

    # --8<-- [end:propose]

    def _check_serving(self) -> None:
        if self.failure is not None or self.removed:
            raise errors.STOPPED

    def _timeout_error(self) -> EtcdError:
        """etcd tells a client whose request timed out soon after a leader change why."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_leader_change < 3 * self.timing.election_ms / 1000:
            return errors.TIMEOUT_DUE_TO_LEADER_FAIL
        return errors.TIMEOUT

    async def propose_conf_change(self, change: ConfChange) -> None:
        """Replicate a membership change; return once it is applied here."""
        self._check_serving()
        change_id = next(self._request_ids)
        change = ConfChange(change.type, change.node_id, change.context, id=change_id)
        future = self._conf_changes.register(change_id)
        try:
            self.raw.propose_conf_change(change)
        except ProposalDroppedError as error:
            self._conf_changes.forget(change_id)
            raise errors.PROPOSAL_DROPPED from error
        self._wake.set()
        try:
            await asyncio.wait_for(future, self.timing.request_timeout)
        except TimeoutError:
            raise self._timeout_error() from None
        finally:
            self._conf_changes.forget(change_id)

    # --8<-- [start:read_index]
    async def linearizable_read(self) -> None:
        """Wait until a read served now would be linearizable (Raft thesis §6.4).

        The read joins the next ReadIndex round (`kv.server.replica.reads`); the round's index comes
        back in a Ready's ``read_states``, and the read goes ahead once this member applied
        that far.
        """
        self._check_serving()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timing.request_timeout
        try:
            # Shielded: one read giving up must not cancel the round for the others.
            index = await asyncio.wait_for(
                asyncio.shield(self.reads.join()), deadline - loop.time()
            )
            await asyncio.wait_for(self.wait_applied(index), deadline - loop.time())
        except TimeoutError:
            raise errors.TIMEOUT from None

    def _ask_read_index(self, context: bytes) -> None:
        self.raw.read_index(context)
        self._wake.set()

    # --8<-- [end:read_index]

    async def wait_applied(self, index: int) -> None:
        if self.applied < index:
            await self._applied_waiters.wait(index)

    def transfer_leader(self, transferee: int) -> None:
        self.raw.transfer_leader(transferee)
        self._wake.set()

    # -- applying -----------------------------------------------------------------------

    @property
    def members(self) -> MemberStore:
        assert self.machine.members is not None
        return self.machine.members

    def _apply(self, ready: Ready) -> None:
        if ready.soft_state is not None:
            self._on_soft_state(ready)
        if ready.snapshot is not None:
            self._install_snapshot(ready.snapshot)
        for entry in ready.committed_entries:
            self._apply_entry(entry)
        if ready.committed_entries:
            commit_applied(self.backend, self.machine)
            self._maybe_snapshot()
            if self.is_leader and self._version_task is None:
                self._version_task = duties.decide_cluster_version(self)
        for state in ready.read_states:
            self.reads.answered(state.request_ctx, state.index)
        self._applied_waiters.reached(self.applied)

    # --8<-- [start:leader_changed]
    def _on_soft_state(self, ready: Ready) -> None:
        assert ready.soft_state is not None
        lead = ready.soft_state.lead
        if not lead and not self.leader_changes:
            return  # still looking for a first leader: nothing was lost
        self._last_leader_change = asyncio.get_running_loop().time()
        self.leader_changes += 1
        # Reads waiting for a ReadIndex answer from the old leader will not get one: tell
        # them (etcd: linearizableReadLoop answers ErrLeaderChanged).
        self.reads.leader_changed()
        if lead:
            log.info(
                "raft.node: %x elected leader %x at term %d", self.member_id, lead, self.raw.term
            )
        else:
            log.info("raft.node: %x lost leader at term %d", self.member_id, self.raw.term)

    # --8<-- [end:leader_changed]

    # --8<-- [start:apply_entry]
    def _apply_entry(self, entry: Entry) -> None:
        if entry.type is EntryType.CONF_CHANGE:
            self._apply_conf_change(entry)
        elif entry.data:
            request = InternalRaftRequest.FromString(entry.data)
            result = self.machine.apply(entry.index, request)
            if result is not None:  # None: applied before (a replay)
                self._writes.trigger(request.header.ID, result)
        else:
            self.machine.skip(entry.index)  # a new leader's empty entry
        self.applied = entry.index
        self.applied_term = entry.term

    def _apply_conf_change(self, entry: Entry) -> None:
        change = ConfChange.unmarshal(entry.data)
        self.machine.apply_conf_change(entry.index, change)
        self.raw.apply_conf_change(change)
        self._sync_peers()
        if change.type is ConfChangeType.REMOVE_NODE and change.node_id == self.member_id:
            self._mark_removed()
        self._conf_changes.trigger(change.id, None)

    # --8<-- [end:apply_entry]

    def _mark_removed(self) -> None:
        if not self.removed:
            log.warning("%s", REMOVED_TEXT)
            self.removed = True

    def _sync_peers(self) -> None:
        """Point the transport at the members the state machine knows."""
        members = {member.id: member for member in self.members.list()}
        for member_id in self.transport.peer_ids - set(members):
            self.transport.remove_peer(member_id)
        for member in members.values():
            self.transport.set_peer(member.id, member.peer_urls)

    # -- snapshots ----------------------------------------------------------------------

    # --8<-- [start:maybe_snapshot]
    def _maybe_snapshot(self) -> None:
        if self.applied - self.disk.snapshot_index < self.policy.snapshot_count:
            return
        self.backend.sync()  # the data first: the log may only be released once it is safe
        self.disk.snapshot(
            self.applied,
            self.raw.conf_state(),
            max_wals=self.policy.max_wals,
            max_snapshots=self.policy.max_snapshots,
            catch_up_entries=self.catch_up_entries,
        )

    # --8<-- [end:maybe_snapshot]

    # --8<-- [start:install_snapshot]
    def _install_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the backend with the leader's (persisted beside it by `RaftDisk`)."""
        index = snapshot.metadata.index
        received = received_backend_path(self.disk.snapshotter.directory, index)
        if received.exists():
            self.backend = swap_backend(self.backend, received)
        self.machine = open_state_machine(self.backend, at_least=index)
        self.applied = index
        self.applied_term = snapshot.metadata.term
        self._sync_peers()
        log.info("applied the leader's snapshot at index %d", index)

    # --8<-- [end:install_snapshot]

    # --8<-- [start:merged_snapshot]
    async def merged_snapshot(self) -> raft_pb2.Snapshot:
        """The snapshot a MsgSnap carries, made now (etcd: createMergedSnapshotMessage).

        Its data is a copy of the backend; its metadata is the applied index, that entry's
        term and the configuration as of now. The core's stored snapshot is only taken every
        --snapshot-count entries and may not list a member added since, which would refuse
        it. The copy is taken after the metadata, so it holds at least that much (its
        consistent index tells the recipient where it really stands).
        """
        index = self.applied
        metadata = raft_pb2.SnapshotMetadata(
            index=index,
            term=self.raw.term_at(index),
            conf_state=raft_wire.conf_state_to_pb(self.raw.conf_state()),
        )
        return raft_pb2.Snapshot(data=await copy_backend(self.backend), metadata=metadata)

    # --8<-- [end:merged_snapshot]

    # -- what the services show --------------------------------------------------------

    def member_list(self) -> rpc_pb2.MemberListResponse:
        """The members as etcd's MemberList shows them (the header has no revision)."""
        header = rpc_pb2.ResponseHeader(
            cluster_id=self.cluster_id, member_id=self.member_id, raft_term=self.term
        )
        return self.members.list_response(header)

    @property
    def term(self) -> int:
        """The term responses carry: the last applied entry's (etcd's ``Term()``)."""
        return self.applied_term

    @property
    def leader(self) -> int:
        return self.raw.lead

    @property
    def is_leader(self) -> bool:
        return self.raw.role is Role.LEADER

    @property
    def last_index(self) -> int:
        return self.raw.last_index()

    @property
    def commit_index(self) -> int:
        return self.raw.commit_index

    @property
    def is_learner(self) -> bool:
        """Is this member a learner? Asked on every request, so Raft's configuration (in
        memory) answers; it changes with the member table, in the same applied entry."""
        return self.raw.is_learner

    def check_not_learner(self) -> None:
        """A learner serves only Status and serializable reads (etcd 3.4): it is not a
        voting member, so it can neither confirm a read nor take a request for clients."""
        if self.is_learner:
            raise errors.NOT_SUPPORTED_FOR_LEARNER

    def check_leader(self) -> None:
        """Raise etcd's errors for a request only a leader can serve."""
        if not self.raw.lead:
            raise errors.NO_LEADER
        if not self.is_leader:
            raise errors.NOT_LEADER


__all__ = ["RaftError", "Replica", "Timing"]
