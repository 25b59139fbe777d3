"""etcd's Raft messages (Entry, HardState, ...), generated from raft.proto (do not edit *_pb2*)."""
