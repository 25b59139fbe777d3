"""The simulated cluster's clients: their requests, the history they record, the workloads
that drive them, and their watches (chapters 3, 4 and 8).

A client sends one request at a time to a member over a link that takes time but never
fails, retries only what certainly did not happen, and records every request for the
linearizability checker (`kv.linearizability`). Watchers are clients too: they watch on the
members' hubs and follow them across crashes.

Modules, in reading order:

* `client` -- `Client` and `ClientOp`: requests, retries, timeouts, the history; a request as
  the ``InternalRaftRequest`` a member proposes, and its answer as the checker's output.
* `traffic` -- `ClientTraffic` (``cluster.traffic``): requests on their way to a member and
  back, refused, answered or timed out (it runs on the cluster's clock, so `kv.sim.Cluster`
  has it from chapter 3).
* `workload` -- random client workloads, run on a new cluster and checked for
  linearizability by seed (``python -m kv.sim``).
* `watchers` -- chapter 8: `SimWatcher`s on the members' watch hubs, resumed across crashes.
"""
