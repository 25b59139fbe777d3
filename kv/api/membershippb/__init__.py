"""etcd 3.5's membership messages, generated from membership.proto (do not edit *_pb2*)."""
