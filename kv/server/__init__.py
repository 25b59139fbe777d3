"""kv.server: one etcd member as a process -- gRPC in front, Raft in the middle, disk below.

The layers, in the order a request travels through them at run time (and a good reading
order), each a folder of its own:

* `app` -- ``kv serve``: builds every layer below from a `config.ServerConfig` (etcd's flags)
  and `bootstrap` (a new member, one joining a cluster, or a restart from its data
  directory), serves until a signal, stops them in order.
* `front` -- one port for several protocols (chapter 10): a member's client URL answers
  gRPC and HTTP/1.1 (``/health``, ``/metrics``), told apart by a connection's first bytes,
  as etcd's cmux does, and deals the gRPC connections to several grpc.aio servers in turn.
* `requests` -- what clients send and get back: etcd's gRPC services, the checks a request
  must pass (validation, size, the space quota), membership changes, and the
  `requests.server.Server` (etcd's EtcdServer) that answers each request with a header,
  through the replica below.
* `replica` -- the member's Raft loop: `replica.replica.Replica` drives the pure core
  (`kv.raft.RawNode`) with real time, disk and network, in the order a Ready demands
  (persist, send, apply, advance); the clients proposing to it and waiting on it, and
  ReadIndex rounds, in a layer of their own (`replica.clients`); the snapshots it makes
  (`replica.snapshots`) and the duties a member does for its cluster (`replica.duties`).
* `disk`, `peers` -- what the Raft loop persists and sends: Raft's log and snapshots in the
  WAL and snapshot files (`disk.raft_disk`, laid out by `disk.data_dir`; ``kv snapshot`` in
  `disk.snapshot_file`) and the transport to the other members (`peers.transport`: a
  framed stream of Raft messages to each peer, gRPC for the rest).
  `raft_wire` turns the core's values into etcd's protobufs and back, for both;
  `wire_bytes` writes entries and messages straight to protobuf's bytes, each entry once,
  on the hot path.
* `applied` -- the applied state: committed entries applied to the store exactly once
  (`applied.state_machine`, `applied.apply`), the alarms and the member table it keeps, and
  the backend as a whole (`applied.applied_state`: committed with the consistent index,
  copied for a follower, replaced by a leader's).

Beside them, used by every layer: `errors` (etcd's errors, code and text byte for byte; the
client maps them back too), `config` (etcd's flags, their defaults and checks) with
`flag_values` (how a flag's text reads: Go durations, URLs), `disk.data_dir` (where each
file lives), and `cycle_collector` (how ``kv serve`` runs Python's cycle collector). Below
them are the chapters' building blocks: `kv.mvcc` (the store), `kv.backend` (SQLite),
`kv.wal` and `kv.snap` (the log and snapshot files). Otherwise a layer imports only from
layers below it (the replica's duties and snapshots call back into it, behind
``TYPE_CHECKING``). The subpackages re-export nothing, so that importing one module (the
client imports `errors`) does not pull in the whole server.
"""
