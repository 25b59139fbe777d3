"""The member's Raft loop: the pure core driven with real time, disk and network (chapters 2,
4 and 5).

Two parts: the loop's own turn and chores, the modules here; and the clients' side, what a
request asks of the loop and its waiting for the answer, the layer `clients`.

Modules, in reading order:

* `replica` -- `Replica`: the ticker and the Ready loop (persist, send, apply, advance),
  applying entries and the leader's snapshots.
* `timing` -- `Timing`: heartbeat and election timeout, and the lessor they imply.
* `clients` -- a layer of its own, the clients' side of the loop: writes and membership
  changes proposed and waited for, linearizable reads and their ReadIndex rounds; what the
  loop tells them (`clients.proposals`, `clients.waiters`, `clients.reads`).
* `pacing` -- a busy leader's Ready turns spaced, so that each carries more writes.
* `outbox` -- a Ready's messages, less those a later one of the same Ready makes redundant.
* `space` -- the space quota checked again as each entry is applied: an entry that no longer
  fits is applied, answered with the space error, and raises NOSPACE.
* `batching` -- when the backend's batch is committed: on etcd's batch interval, when it is
  full, and before anything that needs the file itself.
* `snapshots` -- the snapshots the member makes: its own every ``--snapshot-count`` entries,
  and one for a follower that needs it.
* `duties` -- what a member does for its cluster besides replicating: publish itself, settle
  the cluster version, hand over leadership before it stops.
* `expiry` -- the leader's lease expiry (chapter 7): leases past their deadline revoked
  through the log once a ReadIndex round confirms the leader, and the lease checkpoints.

The loop persists through `kv.server.disk`, sends through `kv.server.peers` (the transport is
handed to the replica, which attaches itself as the transport's inbox) and applies through
`kv.server.applied`.
"""
