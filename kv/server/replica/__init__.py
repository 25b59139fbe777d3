"""The member's Raft loop: the pure core driven with real time, disk and network (chapters 2,
4 and 5).

Modules, in reading order:

* `replica` -- `Replica`: the ticker and the Ready loop (persist, send, apply, advance),
  applying entries and the leader's snapshots.
* `timing` -- `Timing`: heartbeat and election timeout, and the lessor they imply.
* `proposals` -- the clients' side: writes and membership changes proposed and waited for,
  linearizable reads; what the loop tells them.
* `waiters` -- clients waiting for their proposals by request id (etcd's ``wait.Wait``) and
  for the applied index (``wait.WaitTime``); the request id generator.
* `reads` -- ReadIndex rounds, batched as etcd batches them.
* `pacing` -- a busy leader's Ready turns spaced, so that each carries more writes.
* `outbox` -- a Ready's messages, less those a later one of the same Ready makes redundant.
* `space` -- the space quota checked again as each entry is applied: an entry that no longer
  fits is applied, answered with the space error, and raises NOSPACE.
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
