"""etcd's User, Role, Permission, generated from auth.proto (do not edit *_pb2* files)."""
