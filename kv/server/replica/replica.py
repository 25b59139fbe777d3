"""A replica: one member's Raft loop, driving the pure core with real time, disk and network
(chapters 4 and 5).

`kv.raft.RawNode` does no I/O; this class does all of it, in one asyncio task, in the order
the `kv.raft.Ready` contract demands (etcd: ``etcdserver/raft.go``, ``raftNode.start``):

1. a timer calls ``tick()`` every ``--heartbeat-interval``; messages from peers
   (`kv.server.peers.transport`) are stepped as they arrive; clients' writes are proposed;
2. whenever the core has a Ready, the loop **persists** it (`kv.server.disk.raft_disk`: WAL records,
   fsynced in a worker thread while the event loop goes on), then **sends** its messages,
   then **applies** its committed entries to the state machine (the backend's batch is
   committed with the consistent index on etcd's batch interval: `kv.server.replica.batching`),
   then **advances**. A leader sends and applies before it persists,
   when what it applies is on its disk already (`Replica._leads_first`).

A replica answers a write once its entry is *committed* -- on the disks of a majority (for a
member alone, its own disk: chapter 2's durable write path is this loop) -- and applied here.
The clients' side, proposing and waiting (writes, membership changes, ReadIndex reads), is
the layer `kv.server.replica.clients` (its `proposals.Proposals` is what the loop calls); the
snapshots the loop makes are `kv.server.replica.snapshots`.

Failure is fail-stop, as in chapter 2: if the log or the backend cannot be written, the
member stops taking writes and answers "etcdserver: server stopped".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.backend import Backend
from kv.raft import (
    ConfChange,
    ConfChangeType,
    Entry,
    EntryType,
    Message,
    ProposalDroppedError,
    RawNode,
    Ready,
    Role,
    Snapshot,
    StepPeerNotFoundError,
)
from kv.server import errors
from kv.server.applied.applied_state import open_state_machine, swap_backend
from kv.server.applied.members import MemberStore
from kv.server.applied.state_machine import StateMachine
from kv.server.disk.raft_disk import (
    SNAPSHOT_CATCH_UP_ENTRIES,
    RaftDisk,
    SnapshotPolicy,
    received_backend_path,
)
from kv.server.metrics.histogram import DISK_BUCKETS, Histogram
from kv.server.peers.transport import REMOVED_TEXT, PeerTransport, RaftInbox
from kv.server.replica import batching, duties, expiry, outbox, snapshots, space
from kv.server.replica.clients.proposals import Proposals
from kv.server.replica.pacing import TurnPacing
from kv.server.replica.timing import Timing
from kv.watch import WatchHub

log = logging.getLogger(__name__)


def applies_only_persisted(ready: Ready) -> bool:
    """Is everything ``ready`` has to apply persisted before it, by earlier Readys? (No
    snapshot to install, and every committed entry before the first of its new entries.)"""
    if ready.snapshot is not None:
        return False
    committed, entries = ready.committed_entries, ready.entries
    return not committed or not entries or committed[-1].index < entries[0].index


class Replica:
    """One member's Raft loop and its state machine; `proposals`, the clients waiting on both."""

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
        batch_policy: batching.BatchPolicy | None = None,
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
        #: When the backend's batch is committed (`batching`), and when it last was.
        self.batch = batching.Batch(
            batch_policy or batching.BatchPolicy(), time.monotonic(), backend.compact_revision
        )
        self.member_id = raw.id
        self.cluster_id = disk.cluster_id
        self.transport = transport
        #: Whether an entry fits this member's space quota; the requests layer, which owns
        #: the quota, sets it (etcd's apply-time check, `kv.server.replica.space`).
        self.fits_quota: space.FitsQuota = space.fits_always
        transport.attach(
            RaftInbox(
                deliver=self.deliver,
                unreachable=self.report_unreachable,
                snapshot_status=self.report_snapshot,
                snapshot=lambda: snapshots.merged_snapshot(self),
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
        #: The clients waiting on this loop: `propose`, `linearizable_read` and the rest.
        self.proposals = Proposals(
            raw,
            timing,
            wake=self._wake.set,
            check_serving=self._check_serving,
            applied=lambda: self.applied,
        )
        #: Under load, a leader's turns come no closer than `Timing.write_pace` (`pacing`).
        self._pacing = TurnPacing(
            timing.write_pace,
            now=time.monotonic,
            cpu=time.thread_time,
            waiting=lambda: self.proposals.pending if self.is_leader else 0,
            gathered=lambda: self.proposals.queued,
        )
        self.leader_changes = 0
        #: New leaders seen: a leader lost is not one (etcd_server_leader_changes_seen_total).
        self.leaders_seen = 0
        self._last_leader = 0
        #: How long each commit of the backend took (etcd_disk_backend_commit_duration_seconds).
        self.backend_commit_seconds = Histogram(DISK_BUCKETS)
        self._campaign_when_applied = False
        #: The member's watchers (chapter 8): the store hands them every write it applies,
        #: so a watch on any member sees every write, whoever took it.
        self.watches = WatchHub(machine.store)
        #: The leader's proposal of the cluster version, while it is under way.
        self._version_task: asyncio.Task[None] | None = None

    # -- running ------------------------------------------------------------------------

    def add_task(self, task: asyncio.Task[None]) -> None:
        """A task of this member's that `stop` cancels (`kv.server.replica.duties` starts some)."""
        self._tasks.append(task)

    def start(self) -> None:
        self._campaign_when_applied = True  # see `_campaign_if_alone`
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._ticker(), name=f"raft ticks {self.member_id:x}"),
            loop.create_task(self._ready_loop(), name=f"raft loop {self.member_id:x}"),
            loop.create_task(expiry.revoke_expired(self), name=f"leases {self.member_id:x}"),
            loop.create_task(batching.commit_on_interval(self), name=f"batch {self.member_id:x}"),
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
        self.proposals.fail(errors.STOPPED)
        await self.transport.close()
        self.disk.close()
        if self.failure is None:  # etcd's backend commits its batch when it closes
            with contextlib.suppress(Exception):  # logged: the restart replays the log
                self.commit_backend()
        self.backend.close()

    def _campaign_if_alone(self) -> None:
        """A member alone in its configuration campaigns as soon as it has applied the
        configuration from its log (Raft refuses to campaign while configuration changes
        wait to be applied; see `_ready_loop`), instead of after a whole election timeout
        (etcd: --initial-election-tick-advance). Members of a larger cluster wait the full
        randomized timeout: started together, they would otherwise time out together and
        split the vote, and a restarted member would depose a healthy leader before its
        first heartbeat arrived (without PreVote, etcd 3.4's default).
        """
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
            self.proposals.ticked()
            self._wake.set()

    # --8<-- [start:ready_loop]
    async def _ready_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while await self._next_ready():
                ready = self.raw.ready()
                # A leader may send and apply first, and write its disk meanwhile (`_leads_first`).
                early = self._leads_first(ready)
                try:
                    if early:
                        self._send(ready)
                        self._apply(ready)
                    await self.disk.persist(ready)  # 1. persist (fsync when must_sync)
                    if not early:
                        self._send(ready)  # 2. send
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

    async def _next_ready(self) -> bool:
        """Is there a Ready to handle, once the writes proposed since the last one are in the
        core? They go in together (`Proposals.step_queued`): all that arrived while the loop
        persisted and applied the last Ready make the next one. A busy leader first waits a
        little for more (`kv.server.replica.pacing`)."""
        if not (self.proposals.queued or self.raw.has_ready()):
            return False
        await self._pacing.next_turn()
        self.proposals.step_queued()
        return self.raw.has_ready()

    def _send(self, ready: Ready) -> None:
        """Send the Ready's messages, less those a later one makes redundant (`outbox`)."""
        self.transport.send(outbox.without_superseded(ready.messages))

    def _leads_first(self, ready: Ready) -> bool:
        """May this Ready's messages leave, and its committed entries be applied, before it is
        persisted? Yes on a leader (Raft thesis §10.2.1; etcd's server does the same):

        * its messages are appends, heartbeats and answers that promise nothing about the
          leader's own disk -- its term and vote were persisted before it campaigned, and its
          acknowledgement of its own new entries is stepped only in `advance`, after they are
          written. So the leader's fsync runs while the followers write theirs, and a put
          waits for the slower of the two, not both;
        * the entries it has to apply were committed by acknowledgements of earlier Readys,
          whose entries it persisted before it advanced: they are on its disk already
          (`applies_only_persisted` checks), and their clients hear back while this Ready's
          fsync runs.
        """
        return self.raw.role is Role.LEADER and applies_only_persisted(ready)

    def _stop_writes(self, error: BaseException) -> None:
        if self.failure is not None:
            return  # said already (a failed commit, say, reaches the loop too)
        log.error("stopped taking writes: %s (restart the member to recover)", error)
        self.failure = error
        self.proposals.fail(errors.STOPPED)

    def commit_backend(self) -> None:
        """Commit the backend's batch now (`batching.commit`: etcd's ForceCommit), for what
        needs the file itself to hold what was applied. A failure stops writes.

        Raises:
            EtcdError: "server stopped", if writes were stopped already.
            BackendError: the commit failed.
        """
        try:
            batching.commit(self)
        except Exception as error:
            self._stop_writes(error)
            raise

    def _check_serving(self) -> None:
        if self.failure is not None or self.removed:
            raise errors.STOPPED

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
            batching.commit_if_due(self)  # the batch stays open across Readys (`batching`)
            snapshots.maybe_snapshot(self)
            if self.is_leader and self._version_task is None:
                self._version_task = duties.decide_cluster_version(self)
        for state in ready.read_states:
            self.proposals.read_index(state.request_ctx, state.index)
        self.proposals.applied_to(self.applied)

    # --8<-- [start:leader_changed]
    def _on_soft_state(self, ready: Ready) -> None:
        assert ready.soft_state is not None
        if not self.is_leader:  # chapter 7: only a leader keeps lease deadlines
            self.machine.leases.lessor.demote()
        lead = ready.soft_state.lead
        if lead and lead != self._last_leader:  # etcd: raftNode.start counts only these
            self.leaders_seen += 1
        self._last_leader = lead
        if not lead and not self.leader_changes:
            return  # still looking for a first leader: nothing was lost
        self.leader_changes += 1
        # Reads waiting for a ReadIndex answer from the old leader will not get one: tell
        # them (etcd: linearizableReadLoop answers ErrLeaderChanged).
        self.proposals.leader_changed()
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
        elif entry.index <= self.machine.applied_index:
            pass  # replayed after a restart: the backend holds it, so no need to decode it
        elif entry.data:
            request = InternalRaftRequest.FromString(entry.data)
            fitted = self.fits_quota(request)  # the quota's second check (`space`)
            result = self.machine.apply(entry.index, request)
            if result is not None:  # None: applied before (a replay)
                space.answer(self, request, result, fitted)
        else:
            self.machine.skip(entry.index)  # a new leader's empty entry
            if self.is_leader:  # chapter 7: the new leader's lessor takes over the deadlines
                self.machine.leases.lessor.promote(time.monotonic(), self.timing.lease_extension)
        self.applied = entry.index
        self.applied_term = entry.term

    def _apply_conf_change(self, entry: Entry) -> None:
        change = ConfChange.unmarshal(entry.data)
        self.machine.apply_conf_change(entry.index, change)
        self.raw.apply_conf_change(change)
        self._sync_peers()
        if change.type is ConfChangeType.REMOVE_NODE and change.node_id == self.member_id:
            self._mark_removed()
        self.proposals.conf_changed(change.id)

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

    # --8<-- [start:install_snapshot]
    def _install_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the backend with the leader's (persisted beside it by `RaftDisk`)."""
        index = snapshot.metadata.index
        received = received_backend_path(self.disk.snapshotter.directory, index)
        if received.exists():
            batching.commit(self)  # what the old file holds stays whole until it goes
            self.backend = swap_backend(self.backend, received)
        self.machine = open_state_machine(
            self.backend, at_least=index, lessor=self.timing.new_lessor()
        )
        self.watches.restore(self.machine.store)  # watchers read on from the new history
        self.applied = index
        self.applied_term = snapshot.metadata.term
        self._sync_peers()
        log.info("applied the leader's snapshot at index %d", index)

    # --8<-- [end:install_snapshot]

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


__all__ = ["Replica", "Timing"]
