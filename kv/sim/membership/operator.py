"""Membership changes on a simulated cluster: members added as learners, promoted, removed.

Theory of operation
-------------------
The membership changes the way an operator changes etcd's with ``etcdctl member add
--learner``, ``member promote`` and ``member remove``: one change at a time, each a
`kv.raft.ConfChange` proposed to the leader, which takes effect on a member when that member
applies it (`kv.raft.RawNode.apply_conf_change`; thesis §4.1). `Membership` is that operator.
It keeps a queue of `MemberOp`s and works on one at a time:

1. It sends the change to the member that leads (a request that takes a client's delay). The
   member checks it against the configuration it has applied -- is that node a member, is the
   learner caught up, would too few voters be left -- and proposes it, with a fresh request
   id in ``ConfChange.id``.
2. That member answers when it applies the entry carrying that id (etcd's ``AddMember`` waits
   for ``cc.ID`` the same way). No answer within ``request_timeout_ms`` -- the leader crashed,
   lost its leadership, or refused the change because another one was still pending (the core
   then turns it into an empty entry) -- and the operator asks again, whoever leads by then.
   Asking twice is harmless: adding a learner that is one, promoting a voter, removing a
   member that is gone, change nothing.
3. Then the next operation.

What each change sets in motion:

* **add a learner** -- once it is applied, the new member is started with an empty log
  (`Membership._join`, `kv.sim.Cluster.add_node`). The leader finds its log empty and sends
  it the entries from the first one on, or, if it compacted them, its snapshot (Raft §7). A
  learner receives everything but never votes and never counts for commitment, so a slow
  newcomer weakens nobody's majority; that is why etcd adds members as learners first.
* **promote** -- only once the learner has caught up: its match index is at least 90% of the
  leader's (etcd's ``isLearnerReady``). Until then the operator waits and asks again.
* **remove** -- a member that applies its own removal shuts down for good (etcd stops the
  server). A removed leader first steps down (`kv.raft`), and the others elect a new leader.

Steps for scenarios (`AddLearner`, `PromoteLearner`, `RemoveMember`, `RemoveLeader`,
`RemoveFollower`: each queues one operation when it fires) and a seed's churn of them are
`kv.sim.membership.steps`'.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from kv.raft import ConfChange, ConfChangeType, ConfState, MemoryStorage, Role, Status
from kv.raft.events import name
from kv.sim.node import SimNode
from kv.sim.timeline.events import MembershipChanged, TimedEvent
from kv.sim.timeline.tasks import TaskKind

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster


class ChangeKind(enum.Enum):
    ADD_LEARNER = "add-learner"
    PROMOTE = "promote"
    REMOVE = "remove"


class Target(enum.Enum):
    """Whom an operation changes, when that is decided only as it starts."""

    NODE = "node"  # the node given
    LEADER = "leader"  # whoever leads
    FOLLOWER = "follower"  # one of the voters that do not lead (``pick`` chooses)
    LEARNER = "learner"  # the learner with the lowest id


class MemberOpState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # applied (or found in effect already)
    SKIPPED = "skipped"  # nothing to do, or refused: no learner to promote, too few voters
    FAILED = "failed"  # not in effect after `Membership.give_up_ms`


@dataclass(slots=True)
class MemberOp:
    """One membership change, from request to answer."""

    kind: ChangeKind
    #: The node it changes (0 until decided: a new member's id, or the ``target``'s).
    node: int
    target: Target
    queued_at: int
    pick: int = 0
    #: A removal is skipped if it would leave fewer voters than this (a stand-in for etcd's
    #: ``--strict-reconfig-check``, which refuses changes that put the quorum at risk).
    keep_voters: int = 1
    state: MemberOpState = MemberOpState.QUEUED
    started_at: int | None = None
    finished_at: int | None = None
    #: How many times it was proposed.
    attempts: int = 0
    #: The configuration of the member that answered, after applying it.
    conf_state: ConfState | None = None
    #: Why it was skipped or failed, or how it was found done.
    reason: str = ""
    #: The request ids it was proposed under, and the member each went to.
    requests: dict[int, int] = field(default_factory=dict)
    #: Bumped at every step; a scheduled step of an earlier round does nothing.
    round: int = 0
    waited: bool = False

    @property
    def done(self) -> bool:
        return self.state not in (MemberOpState.QUEUED, MemberOpState.RUNNING)

    def describe(self) -> str:
        """``add n4 as a learner``, ``remove the leader``, ``promote n4``, ..."""
        who = _TARGETS[self.target].format(pick=self.pick)
        if self.node:
            who = name(self.node) + (" (the leader)" if self.target is Target.LEADER else "")
        if self.kind is ChangeKind.ADD_LEARNER:
            return f"add {who} as a learner" if self.node else "add a learner"
        return f"{self.kind.value} {who}"

    def __str__(self) -> str:
        when = f" at {self.finished_at}ms" if self.finished_at is not None else ""
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.describe()}: {self.state.value}{when}{reason}"


_TARGETS = {
    Target.NODE: "a member",
    Target.LEADER: "the leader",
    Target.FOLLOWER: "a voting follower (choice {pick})",
    Target.LEARNER: "the oldest learner",
}


class Membership:
    """The cluster's operator for membership changes (see the module docstring)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        #: The operator's record, beside ``cluster.ids`` (the members): which of them are
        #: learners, and which nodes were removed (they are never restarted).
        self.learners: set[int] = set()
        self.removed: set[int] = set()
        #: Every operation asked for, in order.
        self.ops: list[MemberOp] = []
        self.current: MemberOp | None = None
        self._queue: deque[MemberOp] = deque()
        #: etcd's ``readyPercent``: promote once the learner's match index is this share of
        #: the leader's.
        self.ready_ratio = 0.9
        #: An operation not in effect after this long is abandoned.
        self.give_up_ms = 60_000

    # -- the record -------------------------------------------------------------------------

    def voters(self) -> list[int]:
        """The members that vote, by the record."""
        return [node for node in self.cluster.ids if node not in self.learners]

    def was_removed(self, node: int) -> bool:
        """Was ``node`` removed (by the record, or by applying its own removal)?"""
        return node in self.removed or self.cluster.nodes[node].removed

    def _join(self, node: int) -> None:
        """``node``'s add as a learner was applied: start it with an empty log.

        Its disk starts as every member's did, from the cluster's first configuration at
        index 0 (etcd writes that configuration as the log's first entries instead); the rest
        -- the log with every later change, or a snapshot -- comes from the leader.
        """
        cluster = self.cluster
        if node in cluster.nodes:
            return
        storage = MemoryStorage.with_members(cluster.genesis)
        cluster.ids.append(node)
        self.learners.add(node)
        cluster.add_node(SimNode(node, cluster.config, storage))

    def _members_changed(self) -> None:
        """Clients that follow the membership talk to the voters (etcd 3.4's learners serve
        no client requests, and clientv3's endpoint sync leaves them out)."""
        voters = self.voters()
        for client in self.cluster.clients:
            if client.follows_members:
                client.follow(voters)

    # -- asking ---------------------------------------------------------------------------

    def add_learner(self) -> MemberOp:
        """Add a new member (the next unused id) as a learner, then start it empty."""
        return self._submit(ChangeKind.ADD_LEARNER, 0, Target.NODE)

    def promote(self, node: int | None = None) -> MemberOp:
        """Make learner ``node`` (by default the oldest learner) a voter once caught up."""
        return self._submit(ChangeKind.PROMOTE, node or 0, Target.LEARNER)

    def remove(self, node: int, *, keep_voters: int = 1) -> MemberOp:
        """Remove ``node``, unless that would leave fewer than ``keep_voters`` voters."""
        return self._submit(ChangeKind.REMOVE, node, Target.NODE, keep_voters=keep_voters)

    def remove_leader(self, *, keep_voters: int = 1) -> MemberOp:
        """Remove whoever leads when the operation starts."""
        return self._submit(ChangeKind.REMOVE, 0, Target.LEADER, keep_voters=keep_voters)

    def remove_follower(self, pick: int, *, keep_voters: int = 1) -> MemberOp:
        """Remove a voter that does not lead: the ``pick``-th (modulo their number)."""
        return self._submit(ChangeKind.REMOVE, 0, Target.FOLLOWER, pick, keep_voters)

    def _submit(
        self, kind: ChangeKind, node: int, target: Target, pick: int = 0, keep_voters: int = 1
    ) -> MemberOp:
        target = target if not node else Target.NODE
        op = MemberOp(kind, node, target, self.cluster.now, pick, max(1, keep_voters))
        self.ops.append(op)
        self._queue.append(op)
        if self.current is None:
            self._start_next()
        return op

    # -- working on the current operation -------------------------------------------------

    def _start_next(self) -> None:
        self.current = self._queue.popleft() if self._queue else None
        op = self.current
        if op is None:
            return
        op.state, op.started_at = MemberOpState.RUNNING, self.cluster.now
        if op.kind is ChangeKind.ADD_LEARNER:
            op.node = max(self.cluster.nodes) + 1  # an id no member ever had
        self._attempt(op)

    def _later(self, op: MemberOp, delay: int) -> None:
        self._in_round(op, delay, partial(self._attempt, op))

    def _in_round(self, op: MemberOp, delay: int, then: Callable[[], None]) -> None:
        """Call ``then`` after ``delay`` ms unless ``op`` moved on to another step meanwhile.
        (A partial, not a lambda: the cluster can then be copied, `Cluster.copy`.)"""
        op.round += 1
        step = partial(self._if_round, op, op.round, then)
        self.cluster.at(self.cluster.now + delay, step, TaskKind.OPERATOR)

    @staticmethod
    def _if_round(op: MemberOp, expected: int, then: Callable[[], None], cluster: Cluster) -> None:
        if op.round == expected:
            then()

    def _attempt(self, op: MemberOp) -> None:
        """Send the change to the member that leads now (or wait for one)."""
        cluster = self.cluster
        if op is not self.current:
            return
        if op.started_at is not None and cluster.now - op.started_at > self.give_up_ms:
            self._finish(op, MemberOpState.FAILED, f"not in effect after {self.give_up_ms}ms")
            return
        leader = cluster.leader()
        if leader is None:
            self._later(op, cluster.config.tick_ms)
            return
        delay = cluster.client_delay()
        self._in_round(op, delay, partial(self._arrives, op, leader))

    def _arrives(self, op: MemberOp, node_id: int) -> None:
        """The request reached ``node_id``: it checks, then proposes."""
        cluster = self.cluster
        status = cluster.nodes[node_id].status()
        if status is None or status.soft_state.role is not Role.LEADER:
            # Down, or no longer leading (etcd would forward it): try whoever leads now.
            self._later(op, cluster.config.retry_backoff_ms)
            return
        change = self._check(op, node_id, status)
        if change is None:
            return
        result = cluster.propose_conf_change(node_id, change)
        if isinstance(result, str):
            self._note(f"{op.describe()}: {name(node_id)} refused ({result})")
            self._later(op, cluster.config.retry_backoff_ms)
            return
        op.attempts += 1
        op.requests[result] = node_id
        again = " again" if op.attempts > 1 else ""
        self._note(f"{op.describe()}: proposed{again} to {name(node_id)}")
        timeout = partial(self._timed_out, op, node_id)
        self._in_round(op, cluster.config.request_timeout_ms, timeout)

    # --8<-- [start:check]
    def _check(self, op: MemberOp, leader: int, status: Status) -> ConfChange | None:
        """What the leader checks before proposing (etcd's ``member`` RPCs): the change to
        propose, or None when the operation finished or must wait."""
        conf = status.conf_state
        members = (*conf.voters, *conf.learners)
        if op.target is Target.LEADER and not op.node:
            op.node = leader
        elif op.target is Target.FOLLOWER and not op.node:
            followers = [voter for voter in conf.voters if voter != leader]
            if not followers:
                self._finish(op, MemberOpState.SKIPPED, "no voting follower")
                return None
            op.node = followers[op.pick % len(followers)]
        elif op.target is Target.LEARNER and not op.node:
            if not conf.learners:
                self._finish(op, MemberOpState.SKIPPED, "no learner to promote")
                return None
            op.node = conf.learners[0]
        if op.kind is ChangeKind.ADD_LEARNER:
            if op.node in members:
                self._finish(op, MemberOpState.DONE, "a member already", conf)
                return None
            return ConfChange(ConfChangeType.ADD_LEARNER_NODE, op.node)
        if op.kind is ChangeKind.PROMOTE:
            if op.node in conf.voters:
                self._finish(op, MemberOpState.DONE, "a voter already", conf)
                return None
            if op.node not in conf.learners:
                self._finish(op, MemberOpState.SKIPPED, "not a learner")
                return None
            match, leader_match = status.progress[op.node].match, status.progress[leader].match
            if match < self.ready_ratio * leader_match:
                if not op.waited:
                    op.waited = True
                    self._note(
                        f"{op.describe()}: not caught up yet (match {match}, the leader's "
                        f"{leader_match}): waiting"
                    )
                self._later(op, self.cluster.config.tick_ms)
                return None
            return ConfChange(ConfChangeType.ADD_NODE, op.node)
        if op.node not in members:
            self._finish(op, MemberOpState.DONE, "not a member", conf)
            return None
        if op.node in conf.voters and len(conf.voters) <= op.keep_voters:
            self._finish(op, MemberOpState.SKIPPED, f"{len(conf.voters)} voters left")
            return None
        return ConfChange(ConfChangeType.REMOVE_NODE, op.node)

    # --8<-- [end:check]

    def _timed_out(self, op: MemberOp, node_id: int) -> None:
        timeout = self.cluster.config.request_timeout_ms
        self._note(f"{op.describe()}: no answer from {name(node_id)} in {timeout}ms")
        self._attempt(op)

    def answered(self, request_id: int, conf_state: ConfState) -> None:
        """A member applied a change the operator asked it for (`kv.sim.Cluster`
        delivers the answer)."""
        op = self.current
        if op is None or request_id not in op.requests:
            return  # an answer to an operation that finished already
        self._finish(
            op, MemberOpState.DONE, f"applied by {name(op.requests[request_id])}", conf_state
        )

    def _finish(
        self,
        op: MemberOp,
        state: MemberOpState,
        reason: str,
        conf_state: ConfState | None = None,
    ) -> None:
        cluster = self.cluster
        op.state, op.finished_at, op.reason, op.conf_state = state, cluster.now, reason, conf_state
        op.round += 1
        configuration = f"; {_describe_conf(conf_state)}" if conf_state is not None else ""
        self._note(f"{op.describe()}: {state.value} ({reason}){configuration}")
        if state is MemberOpState.DONE:
            if op.kind is ChangeKind.ADD_LEARNER:
                self._join(op.node)
            elif op.kind is ChangeKind.PROMOTE:
                self.learners.discard(op.node)
            else:
                if op.node in cluster.ids:
                    cluster.ids.remove(op.node)
                self.learners.discard(op.node)
                self.removed.add(op.node)
            self._members_changed()
        self._start_next()

    def _note(self, text: str) -> None:
        self.cluster.events.append(TimedEvent(self.cluster.now, MembershipChanged(text)))


def _describe_conf(conf: ConfState) -> str:
    voters = ",".join(name(v) for v in conf.voters) or "-"
    learners = ",".join(name(v) for v in conf.learners) or "-"
    return f"voters {voters}, learners {learners}"
