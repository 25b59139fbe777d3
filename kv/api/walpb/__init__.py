"""etcd's WAL Record and Snapshot, generated from record.proto (do not edit the *_pb2* files)."""
