"""etcd's v3 services and messages, generated from rpc.proto (do not edit *_pb2* files)."""
