"""etcd's Lease record for the backend's "lease" bucket, generated from lease.proto (do not edit the *_pb2* files)."""
