"""`Control`: a person's hands on a simulated cluster's timeline (``cluster.control``).

A `kv.sim.Cluster` runs its tasks in order of time (`Cluster.step`). The TUI also
lets a person choose what happens next, as DSLabs' visual debugger does: list every pending
task (`kv.sim.timeline.tasks`: a message's arrival, a member's next tick, a disk write finishing...)
and deliver, drop, duplicate or delay any one of them by its id; make a member time out now,
or set when its election timer fires (RaftScope's "time out", spread and align timers).

These are interventions from outside the system, not faults the simulator draws from its
seed: they are recorded by whoever makes them (the TUI's timeline, as actions at positions),
and a replay makes them again at the same points, so a run stays a pure function of (seed,
configuration, actions). `Control` is part of the cluster it drives, split off to keep
`kv.sim.timeline.cluster` readable: it uses the cluster's own task runner, ticks and Ready loop
(``Cluster._run``, ``_tick``, ``_poke``), as the cluster's methods would.

Introduced with the simulator in chapter 3; its users are the TUI (`tui.session`) and tests.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from kv.raft import Message, MessageType
from kv.sim.timeline.tasks import PendingTask, TaskKind

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster


class Control:
    """Choose the next event and move timers, by hand, on ``cluster``."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    # -- the pending tasks (choose the next event) --------------------------------------

    def pending(self) -> list[PendingTask]:
        """Every task still to run, in order, each with its id (`kv.sim.timeline.tasks`)."""
        return self._cluster.tasks.pending()

    def run_task(self, task_id: int) -> None:
        """Run pending task ``task_id`` now, ahead of its time (deliver a message early, fire
        a timer now). The clock does not move."""
        cluster = self._cluster
        cluster._run(cluster.tasks.take(task_id).run)

    def drop_message(self, task_id: int) -> None:
        """Lose message ``task_id`` on the wire, as the network's own losses do."""
        cluster = self._cluster
        message = self._message(task_id)
        cluster.tasks.take(task_id)
        cluster.network.dropped[message.type] += 1
        if message.type is MessageType.SNAP:
            cluster._report_snapshot(message, failed=True)

    def duplicate_message(self, task_id: int) -> int:
        """Deliver message ``task_id`` twice: a copy arrives at the same time. Returns the
        copy's id."""
        tasks = self._cluster.tasks
        message = self._message(task_id)
        task = tasks.find(task_id)
        self._cluster.network.duplicated[message.type] += 1
        return tasks.push(task.time, task.run, task.kind, task.node, message)

    def delay_task(self, task_id: int, ms: int) -> None:
        """Make pending task ``task_id`` happen ``ms`` later (it keeps its id)."""
        if ms < 0:
            raise ValueError(f"cannot delay by {ms}ms")
        tasks = self._cluster.tasks
        task = tasks.take(task_id)
        task.time += ms
        tasks.put_back(task)

    def _message(self, task_id: int) -> Message:
        message = self._cluster.tasks.find(task_id).message
        if message is None:
            raise KeyError(f"task #{task_id} is not a message")
        return message

    # -- timers ---------------------------------------------------------------------------

    def set_election_timer(self, node_id: int, at_ms: int) -> None:
        """Make ``node_id``'s election timer fire at virtual time ``at_ms``, unless something
        resets it first (RaftScope's spread and align timers). Its ticks move so that one
        falls at ``at_ms``, and its core is told to time out on that tick
        (`kv.raft.RawNode.expire_election_in`). Nothing happens to a member that is down."""
        cluster = self._cluster
        node = cluster.nodes[node_id]
        if node.raw is None:
            return
        if at_ms <= cluster.now:
            raise ValueError(f"cannot time out at {at_ms}ms: it is {cluster.now}ms already")
        tick = cluster.config.tick_ms
        ticks = -(-(at_ms - cluster.now) // tick)
        first = at_ms - (ticks - 1) * tick
        cluster.tasks.cancel(TaskKind.TICK, node_id)
        next_tick = partial(cluster._tick, node_id, node.incarnation)
        cluster.tasks.push(first, next_tick, TaskKind.TICK, node_id)
        node.raw.expire_election_in(ticks)

    def campaign(self, node_id: int) -> None:
        """Make ``node_id`` time out now and start an election (RaftScope's "timeout")."""
        cluster = self._cluster
        node = cluster.nodes[node_id]
        if node.raw is not None:
            node.raw.campaign()
            cluster.poke(node)
