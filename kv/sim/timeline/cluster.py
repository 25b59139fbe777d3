"""`Cluster`: a whole kv cluster in one process, on a virtual clock, replayable by seed.

Theory of operation
-------------------
Everything that will happen is a *task* on one timeline, a heap ordered by (virtual time in
ms, sequence number): a member's next tick, a message's arrival, the end of a disk write, a
client's request reaching a member, a scheduled fault. `Cluster.step` pops the earliest task,
sets the clock to its time and runs it; running it may put new tasks on the heap (a tick
makes a heartbeat, whose delivery is a task at ``now + delay``). Nothing else moves time, so
time jumps from one task to the next, as trio's ``MockClock`` jumps when everything is idle.

After anything touches a node -- a tick, a message, a proposal -- the cluster drains the
node's events onto `Cluster.events` (stamped with the time) and starts its Ready loop if it
is idle: `kv.sim.node.SimNode.begin_ready`, and a task to finish the write after a disk
latency (`kv.sim.node.SimNode.finish_ready`: persist, send, apply, advance).

Determinism: every random choice comes from a ``random.Random`` derived from the seed and a
fixed name (``"{seed}/network"``, ``"{seed}/n2/0"`` for the election timeouts of node 2's
first life, ...), tasks at the same time run in the order they were scheduled, and no set or
dict is iterated in an order that could vary. A run is therefore a pure function of (seed,
configuration, scenario, what the test does): the same seed twice gives the same event log,
line for line. `Cluster.describe` says what to re-run.

While it runs, `kv.sim.safety.SafetyMonitor` checks Raft's safety properties at every leader
election, commit and apply, and raises `kv.sim.safety.SafetyViolation` at once.

Membership changes are `kv.sim.membership`'s (the operator, ``Cluster.membership``): it
proposes through `Cluster.propose_conf_change` and starts new members with `Cluster.add_node`.
A person's hands on the timeline -- run, drop, duplicate or delay one pending task, make a
member time out -- are `kv.sim.timeline.control`'s (``Cluster.control``); `Cluster.copy`
makes the TUI's keyframes. Clients' requests on their way are `kv.sim.clients.traffic`'s
(``Cluster.traffic``); the fault primitives (``partition``, ``crash``, ``restart``, ...) are
`kv.sim.faults.injection`'s, which `Cluster` inherits.
``ids`` is the members as the operator's record has them; ``nodes``, every member there was.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from kv.linearizability import Operation
from kv.raft import ConfChange, MemoryStorage, Message, MessageType, Role
from kv.raft import events as ev
from kv.sim.clients.client import Client, ClientOp
from kv.sim.clients.traffic import ClientTraffic
from kv.sim.config import SimConfig
from kv.sim.faults.injection import FaultInjection
from kv.sim.faults.network import Network
from kv.sim.faults.scenario import Fault, Scenario
from kv.sim.leases.expiry import LeaseExpiry
from kv.sim.leases.keepalive import KeepAlives
from kv.sim.leases.safety import LeaseMonitor
from kv.sim.membership.operator import Membership
from kv.sim.node import SimNode
from kv.sim.safety import SafetyMonitor, SafetyViolation
from kv.sim.timeline.control import Control
from kv.sim.timeline.events import NodeJoined, SimEvent, TimedEvent
from kv.sim.timeline.tasks import TaskKind, TaskQueue


class Cluster(FaultInjection):
    """N members, a network, clients, and the clock that drives them (module docstring).

    Attributes worth reading: ``now`` (virtual ms), ``nodes`` (id -> `SimNode`),
    ``network`` (`kv.sim.faults.network.Network`: links, counters), ``events``, ``ops`` (every
    client request), ``history`` (what the linearizability checker reads).
    """

    def __init__(
        self,
        size: int = 3,
        *,
        seed: int = 0,
        config: SimConfig | None = None,
        scenario: Scenario | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one member")
        self.seed = seed
        self.config = config if config is not None else SimConfig()
        self.now = 0
        #: The members now (changed by `kv.sim.membership` once a change is applied).
        self.ids = list(range(1, size + 1))
        #: The first configuration, which every member's disk starts from (at index 0).
        self.genesis = tuple(self.ids)
        self.network = Network(self.ids, self.config.network, self._rng("network"))
        self.events: list[TimedEvent] = []
        self.ops: list[ClientOp] = []
        self.clients: list[Client] = []
        self.monitor = SafetyMonitor()
        #: The operator that adds, promotes and removes members (`kv.sim.membership`).
        self.membership = Membership(self)
        #: A person's hands on the timeline: choose the next event, move timers
        #: (`kv.sim.timeline.control`).
        self.control = Control(self)
        #: Chapter 7: the leaders' lease expiry, clients' keep-alives, and the check that no
        #: lease is revoked early (`kv.sim.leases`).
        self.expiry = LeaseExpiry(self)
        self.keepalives = KeepAlives(self)
        self.lease_monitor = LeaseMonitor(self.config.lease_min_ttl)
        #: Every fault scheduled so far (the scenario and `at` calls), for `describe`.
        self.scenario: list[tuple[int, Fault]] = []
        self.client_rng = self._rng("clients")
        self._timing_rng = self._rng("timing")
        #: Everything still to happen (`kv.sim.timeline.tasks`).
        self.tasks = TaskQueue()
        self._processes = 0
        #: Clients' requests on their way to a member and back (`kv.sim.clients.traffic`).
        self.traffic = ClientTraffic(self)
        self.nodes: dict[int, SimNode] = {
            node_id: SimNode(node_id, self.config, MemoryStorage.with_members(self.ids))
            for node_id in self.ids
        }
        for node_id in self.ids:
            self._start(node_id)
        for time, fault in (scenario or Scenario()).steps:
            self.at(time, fault)

    @classmethod
    def create(
        cls,
        size: int = 3,
        *,
        seed: int = 0,
        config: SimConfig | None = None,
        scenario: Scenario | None = None,
    ) -> Cluster:
        """A new cluster of members 1..``size``, all followers at term 0, at time 0."""
        return cls(size, seed=seed, config=config, scenario=scenario)

    def _rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}/{name}")

    def describe(self) -> str:
        """What to re-run: seed, size, configuration (if not the default), scenario."""
        parts = [f"seed={self.seed}", f"size={len(self.genesis)}"]
        if self.config != SimConfig():
            parts.append(f"config=({self.config.changes()})")
        parts.append(f"scenario: {Scenario(tuple(self.scenario))}")
        return " ".join(parts)

    # -- the clock ------------------------------------------------------------------------

    def schedule(
        self,
        delay: int,
        run: Callable[[], None],
        kind: TaskKind,
        node: int = 0,
        message: Message | None = None,
    ) -> int:
        """Put ``run`` on the timeline, ``delay`` ms from now; returns the task's id."""
        return self.tasks.push(self.now + delay, run, kind, node, message)

    # --8<-- [start:clock]
    def step(self) -> bool:
        """Run the next task (moving the clock to its time). False if there is none."""
        task = self.tasks.pop()
        if task is None:
            return False
        self.now = task.time
        self._run(task.run)
        return True

    def _run(self, run: Callable[[], None]) -> None:
        try:
            run()
        except SafetyViolation as violation:
            raise SafetyViolation(f"at {self.now}ms: {violation} [{self.describe()}]") from None

    def seconds(self) -> float:
        """The virtual time in seconds (the clock the members' lessors keep deadlines on)."""
        return self.now / 1000

    def next_time(self) -> int | None:
        """When the next task runs (None: nothing left, which only happens if all are down)."""
        return self.tasks.next_time()

    def run_for(self, ms: int) -> None:
        """Run every task due in the next ``ms`` milliseconds; the clock ends at now + ms."""
        end = self.now + ms
        while (due := self.tasks.next_time()) is not None and due <= end:
            self.step()
        self.now = end

    # --8<-- [end:clock]

    def run_until(self, predicate: Callable[[Cluster], object], limit_ms: int) -> bool:
        """Run until ``predicate(cluster)`` holds (checked after every task), for at most
        ``limit_ms``. Returns whether it held; the clock stops where it did."""
        end = self.now + limit_ms
        if predicate(self):
            return True
        while (due := self.tasks.next_time()) is not None and due <= end:
            self.step()
            if predicate(self):
                return True
        self.now = end
        return False

    def at(
        self,
        time: int,
        fault: Fault | Callable[[Cluster], None],
        kind: TaskKind = TaskKind.FAULT,
    ) -> None:
        """Do ``fault`` (or call a function with the cluster) at virtual time ``time`` ms.

        A function must not be a closure or a lambda if the cluster is to be copied
        (`copy`): use a bound method or a ``functools.partial`` of one."""
        if time < self.now:
            raise ValueError(f"cannot schedule at {time}ms: it is {self.now}ms already")
        if not callable(fault):
            self.scenario.append((time, fault))
            self.schedule(time - self.now, partial(fault.apply, self), kind)
        else:
            self.schedule(time - self.now, partial(fault, self), kind)

    def in_flight(self) -> list[tuple[int, Message]]:
        """The messages on the wire: (arrival time, message), earliest first."""
        return [(task.time, task.message) for task in self.tasks.pending() if task.message]

    # -- members --------------------------------------------------------------------------

    def _start(self, node_id: int) -> None:
        node = self.nodes[node_id]
        rng = self._rng(f"n{node_id}/{node.incarnation}")
        started = node.start(rng, self.seconds)
        if node.incarnation > 0:
            self.emit(started)
            self.monitor.restarted(node_id)
        # Members do not tick in step: each starts at its own phase within a tick.
        phase = self._timing_rng.randint(1, self.config.tick_ms)
        first_tick = partial(self._tick, node_id, node.incarnation)
        self.schedule(phase, first_tick, TaskKind.TICK, node_id)
        self.poke(node)

    def _tick(self, node_id: int, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.incarnation != incarnation or not node.up:
            return
        node.tick(self.now)
        self.expiry.tick(node)
        self.poke(node)
        self.schedule(
            self.config.tick_ms, partial(self._tick, node_id, incarnation), TaskKind.TICK, node_id
        )

    def poke(self, node: SimNode) -> None:
        """Collect what the node said, and start writing its next Ready if it is idle."""
        self.collect(node)
        ready = node.begin_ready()
        if ready is None:
            return
        to_disk = bool(ready.entries) or ready.hard_state is not None or ready.snapshot is not None
        delay = self._timing_rng.randint(*self.config.disk_ms) if to_disk else 0
        finish = partial(self._finish_ready, node.id, node.incarnation)
        self.schedule(delay, finish, TaskKind.DISK, node.id)

    def _finish_ready(self, node_id: int, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.incarnation != incarnation or not node.up:
            return  # crashed while writing: the write is lost
        outcome = node.finish_ready()
        self.monitor.applied(node_id, outcome.applied)
        self.expiry.applied(outcome.applied)
        for message in outcome.messages:
            arrivals = self.network.route(message, self.now)
            for arrival in arrivals:
                deliver = partial(self._deliver, message)
                self.schedule(arrival - self.now, deliver, TaskKind.MESSAGE, message.to, message)
            if not arrivals and message.type is MessageType.SNAP:
                self._report_snapshot(message, failed=True)
        for answer in outcome.answers:
            self.traffic.answer(answer)
        for request_id, conf_state in outcome.conf_answers:
            answered = partial(self.membership.answered, request_id, conf_state)
            self.schedule(self.client_delay(), answered, TaskKind.OPERATOR)
        if node.removed:  # it applied its own removal: etcd stops the server
            self.collect(node)
            self.emit(node.leave())
            return
        self.poke(node)

    def _deliver(self, message: Message) -> None:
        node = self.nodes.get(message.to)
        if node is None or not node.up or not self.network.connected(message.from_, message.to):
            self.network.dropped[message.type] += 1
            if message.type is MessageType.SNAP:
                self._report_snapshot(message, failed=True)
            return
        self.network.delivered[message.type] += 1
        node.step(message)
        self.poke(node)
        if message.type is MessageType.SNAP:
            self._report_snapshot(message, failed=False)

    def _report_snapshot(self, message: Message, *, failed: bool) -> None:
        """Tell the sender how sending its snapshot went, as etcd's transport does once the
        stream ends (the leader waits for this before it sends that member anything else)."""
        sender = self.nodes.get(message.from_)
        if sender is not None and sender.raw is not None:
            sender.raw.report_snapshot(message.to, failed=failed)
            self.poke(sender)

    def collect(self, node: SimNode) -> None:
        """Move what the node said onto `events`, telling the safety monitor what it checks."""
        for event in node.take_events():
            self.events.append(TimedEvent(self.now, event))
            raw = node.raw
            if raw is None:
                continue
            if isinstance(event, ev.BecameLeader):
                self.monitor.leader_elected(node.id, event.term, raw)
            elif isinstance(event, ev.Committed):
                led = self.monitor.leaders.get(event.term) == node.id
                self.monitor.commit_advanced(node.id, event.term, led, raw, event.index)

    def emit(self, event: SimEvent) -> None:
        """Add ``event`` to the stream, at the current time."""
        self.events.append(TimedEvent(self.now, event))

    # -- inspection -----------------------------------------------------------------------

    def leader(self) -> int | None:
        """The running leader of the highest term, if any."""
        leaders = [
            (node.term, node_id) for node_id, node in self.nodes.items() if node.role is Role.LEADER
        ]
        return max(leaders)[1] if leaders else None

    def elect_leader(self, limit_ms: int | None = None) -> int:
        """Run until some member leads (at most ``limit_ms``, by default five election
        timeouts) and return it.

        Raises:
            AssertionError: nobody leads by then (with the replay information).
        """
        limit = limit_ms if limit_ms is not None else 5 * self.config.election_timeout_ms
        if not self.run_until(lambda c: c.leader() is not None, limit):
            raise AssertionError(f"no leader within {limit}ms [{self.describe()}]")
        leader = self.leader()
        assert leader is not None
        return leader

    def complete(self, op: ClientOp, limit_ms: int | None = None) -> ClientOp:
        """Run until ``op`` is done (answered, failed or timed out) and return it."""
        limit = limit_ms if limit_ms is not None else self.config.request_timeout_ms + 1_000
        if not self.run_until(lambda c: op.done, limit):
            raise AssertionError(f"{op} not done within {limit}ms [{self.describe()}]")
        return op

    def up(self) -> list[int]:
        """The members that are running."""
        return [node_id for node_id in self.ids if self.nodes[node_id].up]

    def event_lines(self) -> list[str]:
        return [str(event) for event in self.events]

    def converged(self) -> bool:
        """Every member is up, holds the same log and commit index, has applied all of it,
        and has the same store."""
        nodes = [self.nodes[node_id] for node_id in self.ids]
        if not all(node.up and node.writing is None for node in nodes):
            return False
        first = nodes[0]
        if first.commit != first.last_index:
            return False
        for node in nodes:
            if (node.commit, node.applied, node.last_index) != (first.commit,) * 3:
                return False
        # Each member compacts on its own: compare the logs where they all still have them.
        logs = [node.raw for node in nodes if node.raw is not None]
        start = max(log.first_index() for log in logs)
        reference = logs[0].slice(start, first.last_index + 1)
        stores = [node.store for node in nodes]
        return all(log.slice(start, first.last_index + 1) == reference for log in logs) and all(
            store is not None and stores[0] is not None and store.history == stores[0].history
            for store in stores
        )

    # -- time travel (the TUI's keyframes) ------------------------------------------------

    def copy(self) -> Cluster:
        """An independent copy that runs on exactly as this cluster would (for keyframes).

        Sound because every task is a bound method or a partial of one (`kv.sim.timeline.tasks`) and
        every random source is a ``random.Random``, which ``deepcopy`` copies with its state.
        The events are immutable: the copy's list holds the same ones. So do the immutable
        values the members store (log entries, MVCC revisions and key-values, the checker's
        requests and answers: their ``__deepcopy__`` returns them), which were most of the
        copy's cost in a long run: copies of 10 minutes of puts took ~0.4 s, now ~0.1 s.
        """
        memo: dict[int, object] = {id(self.events): list(self.events)}
        return copy.deepcopy(self, memo)

    # -- membership (the operator, `kv.sim.membership`, calls these) ----------------------

    def propose_conf_change(self, node_id: int, change: ConfChange) -> int | str:
        """Member ``node_id`` proposes ``change`` for the operator. Returns the request id it
        will answer under once it applied the change, or why it refused at once."""
        node = self.nodes[node_id]
        request_id = node.next_request_id()
        refusal = node.propose_conf_change(request_id, change)
        self.collect(node)
        if refusal is not None:
            return refusal
        self.poke(node)
        return request_id

    def add_node(self, node: SimNode) -> None:
        """Start a member that never ran before (the operator adds it to the cluster)."""
        self.nodes[node.id] = node
        self.network.add(node.id)
        self.emit(NodeJoined(node.id))
        self._start(node.id)

    # -- clients --------------------------------------------------------------------------

    def client(self, endpoints: int | Iterable[int] | None = None) -> Client:
        """A new client that talks to ``endpoints`` (one member, several, or all), starting
        at a random one and moving to the next when refused. Without ``endpoints`` it
        follows the membership: members added later are endpoints once voters."""
        if endpoints is None:
            chosen = self.membership.voters()
        elif isinstance(endpoints, int):
            chosen = [endpoints]
        else:
            chosen = list(endpoints)
        client = Client(self, len(self.clients) + 1, chosen)
        client.follows_members = endpoints is None
        self.clients.append(client)
        return client

    def client_delay(self) -> int:
        """How long a message takes over a client's link (drawn from the clients' source)."""
        return self.client_rng.randint(*self.config.client_delay_ms)

    def new_process(self) -> int:
        self._processes += 1
        return self._processes

    @property
    def history(self) -> list[Operation[Any, Any]]:
        """Every client request that may have had an effect, for the checker.

        Typed loosely on purpose: the inputs are those of `LeaseInput` (chapters 4, 6 and
        7), and a test checks them with the model that covers what its workload sends. The
        leaders' revokes of expired leases are in it too, as ``LeaseRevoke``s
        (`kv.sim.leases.expiry`).
        """
        ops = [*self.ops, *(revoke.op for revoke in self.expiry.revokes)]
        return [operation for op in ops if (operation := op.operation()) is not None]
