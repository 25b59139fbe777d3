"""The clients' side of the member's Raft loop: what a request asks of the loop, and its waiting
for the answer (chapter 4).

A client's request never runs inside the Ready loop: it queues a proposal or joins a ReadIndex
round, wakes the loop, and waits on a future until the loop applies its entry or confirms its
read. This layer is that meeting point, seen from the clients: the loop's own turn and chores
are the rest of `kv.server.replica`.

Modules, in reading order:

* `proposals` -- `Proposals`, the one face the loop and the request handlers see: writes and
  membership changes proposed and waited for, linearizable reads; what the loop tells them
  (a turn's queued proposals stepped together, an entry applied, a read state, a tick, a
  leader change, the member's stop).
* `waiters` -- clients waiting for their proposals by request id (etcd's ``wait.Wait``) and
  for the applied index (``wait.WaitTime``), one timer for all their deadlines, and the
  request id generator.
* `reads` -- ReadIndex rounds, batched as etcd batches them (``linearizableReadLoop``), and
  paced under load.

`proposals` builds on the other two, which import nothing else of the replica. The loop
builds one `proposals.Proposals` and calls only it (its `kv.server.replica.pacing` borrows
`reads.BUSY_LAG_SECONDS`, so that both measure a busy event loop alike).
"""
