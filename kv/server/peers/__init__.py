"""How a member talks to the other members of its cluster (chapters 4 and 5).

Modules:

* `transport` -- `PeerTransport`: a stream of Raft messages to each peer over gRPC, snapshots
  sent on their own, the fault hook ``kv cluster partition`` uses, and `PeerService`, its
  receiving side; what it receives goes to the `RaftInbox` the replica attaches.

Messages cross the wire as etcd's ``raftpb`` protobufs (`kv.server.raft_wire`).
"""
