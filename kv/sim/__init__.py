"""kv.sim: a deterministic simulator of a whole kv cluster (chapters 3-5, and the TUI).

Chapter 3 introduces it (its demo runs elections in it); chapter 4 adds clients, workloads
and the linearizability check; chapter 5 crashes, snapshots and membership changes.

N members -- each a Raft core (`kv.raft.RawNode`), a disk that keeps only what was
persisted, and the real server's state machine -- talk over a simulated network on a virtual
clock, while simulated clients send them puts, gets and deletes and record what they were
told. Faults (lost, duplicated and reordered messages, partitions, crashes and restarts) are
drawn from the same seed or scheduled by a test. Nothing reads a real clock and every random
choice comes from the seed, so a run is a pure function of (seed, scenario): a failing seed
replays exactly, event for event.

    cluster = Cluster.create(size=3, seed=7)
    cluster.run_until(lambda c: c.leader() is not None, limit_ms=5_000)
    client = cluster.client()
    op = client.put("k", "v")
    cluster.at(cluster.now + 50, CrashLeader())
    cluster.run_until(lambda c: op.done, limit_ms=5_000)
    result = check(KeyValueModel(), cluster.history)     # kv.linearizability

The surface, in short (`Cluster`):

* running -- ``step()`` (one task), ``run_for(ms)``, ``run_until(predicate, limit_ms)``,
  ``elect_leader()``, ``complete(op)``; ``now`` is the virtual time in ms.
* faults -- ``partition(*groups)``, ``cut(frm, to)`` (one way), ``isolate(n)``, ``heal()``,
  ``set_network(NetworkConfig)``, ``crash(n)``, ``restart(n)``, ``transfer_leader(n)``, or
  scheduled: ``at(ms, fault)`` and ``Cluster.create(..., scenario=Scenario.of(...))``.
* membership -- ``membership.add_learner()``, ``promote(n)``, ``remove(n)``,
  ``remove_leader()`` -> `MemberOp` (one change at a time, through the log), or scheduled:
  `AddLearner`, `PromoteLearner`, `RemoveMember`, `RemoveLeader`, `RemoveFollower`.
* clients -- ``client(endpoints)`` -> `Client` with ``put``/``get``/``delete`` -> `ClientOp`;
  ``history`` for the checker.
* watching -- ``events`` (the core's events and the simulator's, with virtual times),
  ``nodes[i]`` (`SimNode`: ``role``, ``term``, ``lead``, ``log``, ``commit``, ``applied``,
  ``store``, ``up``), ``leader()``, ``in_flight()`` (messages on the wire), ``network``
  (links and message counts), ``converged()``, ``describe()`` (what to replay).
* by hand (the TUI) -- ``control`` (`Control`): ``pending()`` tasks by id, ``run_task``,
  ``drop_message``, ``duplicate_message``, ``delay_task``, ``campaign(n)``,
  ``set_election_timer(n, at_ms)``; ``set_link(frm, to, loss, delay_ms)``,
  ``restart(n, wipe_disk=True)`` (as faults to schedule: `Timeout`, `LinkFaults`,
  `Amnesia`); ``copy()`` for time travel.

Layers, in reading order (each folder's ``__init__`` is its own map):

* `config` -- `SimConfig` (clock, disk, clients) and `NetworkConfig` (delays, loss).
* `node/` -- one member: `SimNode`, its Ready loop, its disk and state machine, its server;
  what it shows; what it keeps for clients; its snapshots' format.
* `faults/` -- what goes wrong: the `Network` (links, delays, losses, partitions; counts of
  messages by type), the primitives `Cluster` inherits (``partition``, ``crash``, ...), and
  faults as data (`Partition`, `Crash`, `Heal`, ...) in `Scenario`s.
* `clients/` -- `Client` and `ClientOp` (requests, retries, timeouts, the history),
  `ClientTraffic` (``cluster.traffic``: requests on their way to a member and back), random
  workloads run and checked for linearizability by seed; chapter 8's `SimWatcher`s on the
  members' watch hubs, resumed across crashes.
* `membership/` -- `Membership`, the operator (members added as learners, promoted,
  removed), and its steps for scenarios.
* `safety` -- `SafetyMonitor`: Raft's safety properties checked as the run goes.
* `timeline/` -- the simulator's events and `TimedEvent`, the stream with the core's; the
  tasks still to run (`TaskQueue`); `Cluster`, the clock that drives everything and the
  public surface; `Control` (``cluster.control``): choose the next event, move timers.
* `leases/` -- chapter 7: the leader's lease expiry on the virtual clock
  (``cluster.expiry``), clients' keep-alives (``cluster.keepalives.keep``), and the check
  that no lease is revoked early (``cluster.lease_monitor``).
* `__main__` -- ``python -m kv.sim --seed N``: replay one seed's workload and check it.

`timeline/`, `faults/`, `clients/` and `membership/` re-export nothing: the members, faults
and clients write to the timeline's events and tasks while the timeline's `Cluster` owns them
all, so a folder that re-exported its modules would import itself half-made. Import a module
by its path, or the public surface from here.
"""

from kv.sim.clients.client import Client, ClientOp, OpState
from kv.sim.config import UNRELIABLE, NetworkConfig, SimConfig
from kv.sim.faults.network import Network
from kv.sim.faults.scenario import (
    Amnesia,
    Crash,
    CrashLeader,
    Cut,
    DeafLeader,
    Fault,
    Heal,
    Isolate,
    IsolateLeader,
    LinkFaults,
    Partition,
    Restart,
    RestartAll,
    RestoreNetwork,
    Scenario,
    SetNetwork,
    Timeout,
    TransferLeader,
    random_scenario,
)
from kv.sim.membership.operator import MemberOp, MemberOpState, Membership
from kv.sim.membership.steps import (
    AddLearner,
    PromoteLearner,
    RemoveFollower,
    RemoveLeader,
    RemoveMember,
    churn_for,
    membership_churn,
)
from kv.sim.node import SimNode
from kv.sim.safety import SafetyMonitor, SafetyViolation
from kv.sim.timeline.cluster import Cluster
from kv.sim.timeline.control import Control
from kv.sim.timeline.events import (
    ClientEvent,
    LeaseEvent,
    MembershipChanged,
    NetworkChanged,
    NodeCrashed,
    NodeJoined,
    NodeLeft,
    NodeRestarted,
    SimEvent,
    TimedEvent,
)

__all__ = [
    "UNRELIABLE",
    "AddLearner",
    "Amnesia",
    "Client",
    "ClientEvent",
    "ClientOp",
    "Cluster",
    "Control",
    "Crash",
    "CrashLeader",
    "Cut",
    "DeafLeader",
    "Fault",
    "Heal",
    "Isolate",
    "IsolateLeader",
    "LeaseEvent",
    "LinkFaults",
    "MemberOp",
    "MemberOpState",
    "Membership",
    "MembershipChanged",
    "Network",
    "NetworkChanged",
    "NetworkConfig",
    "NodeCrashed",
    "NodeJoined",
    "NodeLeft",
    "NodeRestarted",
    "OpState",
    "Partition",
    "PromoteLearner",
    "RemoveFollower",
    "RemoveLeader",
    "RemoveMember",
    "Restart",
    "RestartAll",
    "RestoreNetwork",
    "SafetyMonitor",
    "SafetyViolation",
    "Scenario",
    "SetNetwork",
    "SimConfig",
    "SimEvent",
    "SimNode",
    "TimedEvent",
    "Timeout",
    "TransferLeader",
    "churn_for",
    "membership_churn",
    "random_scenario",
]
