"""Chapter 9, what etcd is for: recipes built on kv's client, as etcd's clientv3/concurrency.

Modules, in reading order:

* `session` -- `Session`: a lease kept alive; the identity that owns a recipe's keys, and
  whose end (a crash, a partition longer than the TTL) releases them.
* `queue` -- the line of keys under a prefix, ordered by create revision, and how a waiter
  waits for its turn (watching the key before its own, from a revision).
* `mutex` -- `Mutex`: a distributed lock; its key's revision is the fencing token.
* `election` -- `Election`: campaign, proclaim, leader, observe, resign.
* `errors` -- what they raise besides the client's errors, with etcd's messages.
* `configuration` -- dynamic configuration: follow a prefix of settings and apply every change
  once, in revision order, across disconnects and compactions.
* `discovery` -- service discovery: instances listed under a prefix on their sessions' leases,
  and `ServiceWatcher`, a `ConfigFollower` over that prefix.

The server's Lock and Election gRPC services (`kv.server.requests.lock_election`) run these
same recipes, as etcd's v3lock and v3election run clientv3/concurrency.
"""

from kv.recipes.election import Election, Leader, Leadership
from kv.recipes.errors import LostWatchError, NoLeaderError, NotLeaderError, RecipeError
from kv.recipes.mutex import Mutex
from kv.recipes.session import DEFAULT_TTL, Session

__all__ = [
    "DEFAULT_TTL",
    "Election",
    "Leader",
    "Leadership",
    "LostWatchError",
    "Mutex",
    "NoLeaderError",
    "NotLeaderError",
    "RecipeError",
    "Session",
]
