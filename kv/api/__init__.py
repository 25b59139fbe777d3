"""etcd's v3 API for kv: our own .proto files and the Python generated from them.

kv speaks etcd 3.4's gRPC API unchanged, so etcdctl and etcd's client libraries can talk to it.
The protos keep etcd's proto packages (they appear on the wire, e.g. ``/etcdserverpb.KV/Range``)
and etcd's message names, field names and field numbers; the comments are ours. One directory
per proto package:

=================  ================================  ==========================================
directory          proto                             what it declares
=================  ================================  ==========================================
``mvccpb/``        ``kv.proto``                      ``KeyValue``, ``Event``
``authpb/``        ``auth.proto``                    ``User``, ``Role``, ``Permission``, ...
``etcdserverpb/``  ``rpc.proto``                     KV, Watch, Lease, Cluster, Maintenance and
                                                     Auth services with all their messages
``v3lockpb/``      ``v3lock.proto``                  the ``Lock`` service
``v3electionpb/``  ``v3election.proto``              the ``Election`` service
=================  ================================  ==========================================

Protos import each other by path from the repository root (``import
"kv/api/mvccpb/kv.proto";``), so the generated modules import as ``from kv.api.mvccpb import
kv_pb2``. Beside each ``X.proto`` live the generated ``X_pb2.py``/``.pyi`` (messages) and
``X_pb2_grpc.py``/``.pyi`` (stubs and servicers); they are committed and never edited by hand.

Regenerate after changing a proto, and check for drift (CI does), with::

    python -m kv.api.generate
    python -m kv.api.generate --check
"""
