"""The simulator's timeline: what happened, what will happen, and the `Cluster` that runs it
(chapter 3).

Everything in a simulated run is on one timeline of virtual milliseconds. Its past is the
event stream (the core's events and the simulator's, each with the time it happened at); its
future is a queue of tasks (a tick, a message's arrival, a disk write finishing, a client's
request, a fault). The `Cluster` takes the earliest task, moves the clock to its time and
runs it, and running it puts new tasks on the queue and new events on the stream. The other
layers -- the members (`kv.sim.node`), faults (`kv.sim.faults`), clients (`kv.sim.clients`),
the membership operator (`kv.sim.membership`), leases (`kv.sim.leases`) -- write to the
stream and schedule on the queue; the `Cluster` owns them all.

Modules, in reading order:

* `events` -- the simulator's events (crashes, restarts, partitions, clients' requests) and
  `TimedEvent`, the stream that carries them with the core's.
* `tasks` -- the future as data: `TaskQueue`, pending tasks with stable ids and kinds.
* `cluster` -- `Cluster`: the clock that runs the tasks, the members' Ready loops, the
  public surface.
* `control` -- `Control` (``cluster.control``): a person's hands on the timeline: choose the
  next task, drop, duplicate or delay one, move election timers.

Nothing is re-exported here: import from the modules, or the public surface from `kv.sim`.
"""
