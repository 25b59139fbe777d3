"""What clients send and what they get back: the top layer of `kv.server` (chapters 1, 2, 5).

Modules, in reading order:

* `services` -- etcd's gRPC services (KV, Maintenance, Cluster, health): each RPC is handed
  to the server, and an `errors.EtcdError` becomes etcd's status code and message.
* `lock_election` -- etcd's Lock and Election services, running chapter 9's recipes
  (`kv.recipes`) through a client of the member itself, as etcd does.
* `unimplemented` -- the answer to every RPC kv does not serve (Auth: not planned).
* `server` -- `Server` (etcd's EtcdServer): checks a request, has it carried out (a write
  through the replica's log, a read from the store after a ReadIndex round), and stamps the
  answer with a header; maintenance (defragment, hash, the snapshot stream).
* `validate`, `quota` -- what a request must pass before it is proposed: its shape and size,
  and the space quota (whose refusal raises the NOSPACE alarm).
* `reconfigure` -- MemberAdd, MemberRemove, MemberUpdate, MemberPromote and MoveLeader, with
  etcd's strict checks.

etcd's errors, which every layer raises, are `kv.server.errors`.
"""
