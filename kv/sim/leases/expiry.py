"""The leader's lease expiry in the simulator: `kv.lease.Expiry` driven on the virtual clock
(chapter 7).

The real server runs the leader's expiry with asyncio (`kv.server.replica.expiry`); here the
same steps (`kv.lease.expiry`) run on the cluster's timeline, so that a lease can expire
across crashes, partitions and leader changes, replayably by seed:

* on each **tick** of a member that leads, a pass every ``CHECK_SECONDS``
  (`kv.lease.Expiry.due`): the leases past their deadline start a revoke each, up to
  ``MAX_PENDING_REVOKES`` at a time;
* a revoke first runs a **ReadIndex round** on its member (`kv.sim.node.SimNode.read` without
  a key) -- retried every ``read_retry_ms`` like a client's read, given up on after the
  request timeout;
* when the round is answered, the revoke is **proposed** only if the member still leads in
  the term it decided in (`kv.lease.Expiry.confirmed`), as a ``LeaseRevokeRequest`` through
  the log; the member's lessor is promoted and demoted by the member itself, as the server's
  replica does (`kv.sim.node`).

Each proposed revoke is recorded twice: as a `kv.sim.clients.client.ClientOp` in the history the
linearizability checker reads (`kv.linearizability.leases` models an expiry as a
``LeaseRevoke``: from its proposal, to its apply by the member that proposed it, or pending
if that member crashed or lost it), and as an `ExpiryRevoke` for the lease safety check
(`kv.sim.leases.safety`).

``confirm_leadership = False`` replays etcd before its fix for bug #15247: the revoke is
proposed once the round is answered, whoever leads by then -- a deposed leader's round is
answered through the new leader once it can reach it, and its revoke, forwarded there, is
committed. The scenarios of chapter 7 use it to show what the check prevents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.lease import Expiry, Revoke
from kv.linearizability.leases import LeaseRevoke
from kv.raft import Entry, EntryType, Role
from kv.sim.clients.client import ClientOp, OpState, to_output
from kv.sim.node.state_codec import decode_request
from kv.sim.timeline.events import LeaseEvent
from kv.sim.timeline.tasks import TaskKind

if TYPE_CHECKING:
    from kv.sim.node import SimNode
    from kv.sim.node.pending import Answer
    from kv.sim.timeline.cluster import Cluster


@dataclass(slots=True)
class ExpiryRevoke:
    """A revoke a leader proposed for an expired lease: when, by whom, and its fate."""

    node: int
    lease: int
    term: int
    #: When it was proposed (ms): the moment the member decided the lease was over.
    proposed_at: int
    #: Its history operation (answered when the proposing member applies it).
    op: ClientOp
    #: When some member first applied it (None: not yet, or never).
    applied_at: int | None = None


@dataclass(slots=True)
class _Round:
    """A revoke waiting for its ReadIndex round, or for its proposal to be applied."""

    node: int
    incarnation: int
    revoke: Revoke
    proposal: ExpiryRevoke | None = None


class LeaseExpiry:
    """Every member's expiry duty, on the cluster's clock (module docstring)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        #: Check leadership before proposing a revoke (etcd's fix for #15247; see above).
        self.confirm_leadership = True
        #: Every revoke proposed for an expired lease, in order.
        self.revokes: list[ExpiryRevoke] = []
        #: Each member's duty in its current life: (incarnation, Expiry).
        self._duties: dict[int, tuple[int, Expiry]] = {}
        #: Rounds and proposals under way, by request id.
        self._rounds: dict[int, _Round] = {}
        #: Proposed revokes no member has applied yet, by request id.
        self._unapplied: dict[int, ExpiryRevoke] = {}

    def tick(self, node: SimNode) -> None:
        """``node`` ticked: if it leads and a pass is due, start the revokes it finds."""
        if node.role is not Role.LEADER or node.machine is None:
            return
        lessor = node.lessor()
        expiry = self._duty(node)
        now = self.cluster.seconds()
        if not lessor.is_primary or not expiry.due(now):
            return
        for revoke in expiry.check(lessor, node.term, now):
            self._start(node, revoke)

    def answered(self, answer: Answer) -> bool:
        """A member answered one of this module's requests (a round, a proposal)? Then
        take the next step and return True; False: the answer is not ours."""
        round = self._rounds.pop(answer.request_id, None)
        if round is None:
            return False
        node = self.cluster.nodes[round.node]
        if round.proposal is None:
            self._confirmed(node, round)
            return True
        revoke = round.proposal
        revoke.op.state, revoke.op.return_time = OpState.OK, self.cluster.now
        output = to_output(revoke.op.input, answer.result)
        if not isinstance(output, str):
            revoke.op.output = output
        self._finish(round)
        return True

    def applied(self, entries: Sequence[Entry]) -> None:
        """A member applied ``entries``: tell the lease monitor about the revokes among them
        applied for the first time (decoded only while some revoke awaits its apply)."""
        if not self._unapplied:
            return
        for entry in entries:
            if entry.type is not EntryType.NORMAL or not entry.data:
                continue
            revoke = self._unapplied.pop(decode_request(entry.data).header.ID, None)
            if revoke is not None:
                revoke.applied_at = self.cluster.now
                self.cluster.lease_monitor.revoke_applied(revoke)

    def _duty(self, node: SimNode) -> Expiry:
        incarnation, expiry = self._duties.get(node.id, (-1, None))
        if expiry is None or incarnation != node.incarnation:
            expiry = Expiry()  # a new life: nothing under way survives a crash
            self._duties[node.id] = (node.incarnation, expiry)
        return expiry

    def _start(self, node: SimNode, revoke: Revoke) -> None:
        request_id = node.next_request_id()
        self._rounds[request_id] = _Round(node.id, node.incarnation, revoke)
        node.read(request_id, None, self.cluster.now)
        what = f"expired: confirming leadership in term {revoke.term}"
        self.cluster.emit(LeaseEvent(node.id, revoke.lease_id, what))
        self._give_up_later(request_id)

    def _confirmed(self, node: SimNode, round: _Round) -> None:
        revoke = round.revoke
        leading = node.term if node.role is Role.LEADER else None
        if self.confirm_leadership and not self._duty(node).confirmed(revoke, leading):
            what = f"not revoked: n{node.id} no longer leads term {revoke.term}"
            self.cluster.emit(LeaseEvent(node.id, revoke.lease_id, what))
            self._finish(round)
            return
        request_id = node.next_request_id()
        request = rpc_pb2.LeaseRevokeRequest(ID=revoke.lease_id)
        refusal = node.propose(request_id, InternalRaftRequest(lease_revoke=request))
        if refusal is not None:
            self.cluster.emit(LeaseEvent(node.id, revoke.lease_id, f"not revoked: {refusal}"))
            self._finish(round)
            return
        cluster = self.cluster
        now, timeout = cluster.now, cluster.config.request_timeout_ms
        op = ClientOp(0, cluster.new_process(), LeaseRevoke(revoke.lease_id), now, now + timeout)
        op.node, op.attempts, op.accepted = node.id, 1, True
        round.proposal = ExpiryRevoke(node.id, revoke.lease_id, revoke.term, now, op)
        self.revokes.append(round.proposal)
        self._unapplied[request_id] = round.proposal
        self._rounds[request_id] = round
        self.cluster.emit(LeaseEvent(node.id, revoke.lease_id, "expired: revoke proposed"))
        self._give_up_later(request_id)

    def _give_up_later(self, request_id: int) -> None:
        deadline = self.cluster.now + self.cluster.config.request_timeout_ms
        self.cluster.at(deadline, partial(self._give_up, request_id), TaskKind.CLIENT)

    def _give_up(self, request_id: int, cluster: Cluster) -> None:
        """The request timeout ran out: the revoke is over for this member (a proposal's
        outcome stays unknown: pending in the history)."""
        round = self._rounds.pop(request_id, None)
        if round is None:
            return
        if round.proposal is not None:
            round.proposal.op.state = OpState.TIMED_OUT
        self._finish(round)

    def _finish(self, round: _Round) -> None:
        node = self.cluster.nodes[round.node]
        incarnation, expiry = self._duties.get(round.node, (-1, None))
        if expiry is None or incarnation != round.incarnation or not node.up:
            return  # that life is over, and its duty with it
        for revoke in expiry.finished(round.revoke):
            self._start(node, revoke)
