"""etcd's KeyValue and Event, generated from kv.proto (do not edit the *_pb2* files)."""
