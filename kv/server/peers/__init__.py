"""How a member talks to the other members of its cluster (chapters 4 and 5).

Modules:

* `transport` -- `PeerTransport`: a stream of Raft messages to each peer over gRPC, snapshots
  sent on their own, the fault hook ``kv cluster partition`` uses; what it receives goes to
  the `RaftInbox` the replica attaches.
* `peer_service` -- `PeerService`, its receiving side on the peer URLs (and the forwarded
  lease requests the member's `LeaseAnswers` answer).

Messages cross the wire as etcd's ``raftpb`` protobufs (`kv.server.raft_wire`).
"""
