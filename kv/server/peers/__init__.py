"""How a member talks to the other members of its cluster (chapters 4 and 5).

Modules, in reading order:

* `transport` -- `PeerTransport`: what the member's Raft loop sees. It queues each message
  for its peer's stream, sends snapshots on their own, keeps the fault hook ``kv cluster
  partition`` uses, and hands what it receives to the `RaftInbox` the replica attaches.
* `frames` -- the Raft stream's wire format: a magic, a hello frame (who sends, for which
  cluster), then length-prefixed ``MessageBatch`` frames.
* `outbound` -- `OutboundStream`, the stream to one peer: its queue, one frame per loop
  turn, the connection kept open and reopened.
* `inbound` -- `InboundStream`, the receiving end: an asyncio protocol that checks the hello
  and hands each message to the transport.
* `peer_service` -- `PeerService`, the gRPC service on the same peer URLs for everything but
  the stream: snapshots, the fault hooks, the member list for joining members, and the
  forwarded lease requests the member's `LeaseAnswers` answer.

Messages cross the wire as etcd's ``raftpb`` protobufs (`kv.server.raft_wire`).
"""
