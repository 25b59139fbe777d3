"""Chapter 7 on the simulator: leases expiring, kept alive, and never revoked early.

Modules, in reading order:

* `expiry` -- `LeaseExpiry` (``cluster.expiry``): the leader's lease expiry on the virtual
  clock, the same steps as the real server's (`kv.lease.expiry`), revokes going through the
  log after a ReadIndex round.
* `keepalive` -- `KeepAlives` (``cluster.keepalives.keep``): clients keeping leases alive
  through any member, which forwards to the leader.
* `safety` -- `LeaseMonitor` (``cluster.lease_monitor``): no lease is revoked within its TTL
  of a grant or a keep-alive that renewed it.
"""

from kv.sim.leases.expiry import LeaseExpiry
from kv.sim.leases.keepalive import KeepAlives
from kv.sim.leases.safety import LeaseMonitor

__all__ = ["KeepAlives", "LeaseExpiry", "LeaseMonitor"]
