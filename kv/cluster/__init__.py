"""``kv cluster``: a local N-member cluster on loopback, to play failures against.

``kv cluster start`` starts N ``kv serve`` processes with etcd's own flags (and any given
after ``--``, for every member: ``kv cluster start -- --quota-backend-bytes=1000000``), each
with a metrics URL for ``/metrics`` and ``/health`` (chapter 10), prints the endpoints for
etcdctl, and stays in the foreground until Ctrl-C stops every member. From other terminals,
``status``, ``kill``, ``stop``, ``restart``, ``partition``, ``heal`` and ``slow-disk`` act on
it: the failure scenarios of the Raft chapters (and chapter 10's slow disk), played against
real processes.

Theory of operation. The commands are separate processes that share nothing but a directory
(``--data-dir``, default ``kv-cluster``) holding the members' data, their logs and a state
file, ``cluster.json``. The state file holds the layout (from which every command computes
the same names, ports and member ids), the pid of each member's latest process, the pid of
the foreground ``start``, and the current partition. A command that changes anything holds
the state file's lock, acts, and records what it did:

* ``kill``/``stop`` signal the member's pid (after checking the pid is still that member's);
* ``restart`` waits for the ports the member's last process held (a killed process closes
  its sockets a moment after it has gone), starts the member itself, in a session of its
  own, records the new pid and re-applies the current partition to it;
* ``partition``/``heal`` call each running member's fault hook (``kvpeerpb.Peer/SetFaults``);
  ``slow-disk`` one member's (``SetDiskFaults``: its WAL fsyncs take longer, chapter 10);
* the foreground ``start`` only watches and reports; on Ctrl-C it stops whatever pids the
  state file lists -- so it stops a member that a control command restarted as well as the
  ones it started, and a member's death never ends it.

Modules, one concept each:

=====================  ===================================================================
`kv.cluster.layout`    names, ports, URLs, ids, the ``kv serve`` flags of each member (pure)
`kv.cluster.state`     the state file and its lock
`kv.cluster.processes` starting a member, telling whether it runs, waiting, stopping
`kv.cluster.faults`    partitions and slow disks through the members' fault hooks
`kv.cluster.status`    ``kv cluster status``: each member's Maintenance.Status
`kv.cluster.control`   kill, stop, restart, partition, heal, slow-disk, stop the cluster
`kv.cluster.supervisor` ``kv cluster start``: start, watch, stop everything on Ctrl-C
`kv.cluster.command`   the command line
=====================  ===================================================================

The modules that talk gRPC are not imported here, so the ``kv`` command stays quick to start.
"""

from kv.cluster.layout import ClusterError, Layout, LocalMember
from kv.cluster.state import ClusterState

__all__ = ["ClusterError", "ClusterState", "Layout", "LocalMember"]
