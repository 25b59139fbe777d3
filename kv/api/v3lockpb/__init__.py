"""etcd's Lock service, generated from v3lock.proto (do not edit the *_pb2* files)."""
