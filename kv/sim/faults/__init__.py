"""What goes wrong in a simulated run: the network, crashes and restarts, and faults as data
(chapter 3).

Every fault is drawn from the run's seed or scheduled by a test, so a failing run replays
exactly. A fault is made of primitives that act on the network or on a member; written down
as data, faults make a *scenario* that a failure message prints and a test replays.

Modules, in reading order:

* `network` -- `Network`: the links between the members, their delays, losses and
  duplicates, partitions and one-way cuts; counts of messages by type.
* `injection` -- `FaultInjection`: the primitives (``partition``, ``cut``, ``heal``,
  ``crash``, ``restart``, ...), which `kv.sim.Cluster` inherits.
* `scenario` -- faults as data (`Partition`, `Crash`, `Heal`, ...), `Scenario` (faults at
  virtual times) and `random_scenario` (a seed's episodes of faults, for the soak tests).

Membership changes can be scheduled the same way: their steps are `kv.sim.membership.steps`.
"""
