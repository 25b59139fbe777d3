"""etcd's Election service, generated from v3election.proto (do not edit *_pb2* files)."""
