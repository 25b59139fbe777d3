"""`benchmarks.kv_counters` times the steps of kv's Raft loop, and each one it times must run.

A stage that names a function kv no longer calls is never counted, and its row in
`benchmarks.cluster`'s Raft loop table reads "-" in every run, unnoticed: that happened to
"stream write wait" once the peer streams stopped being gRPC calls (the stage still wrapped
``grpc.aio``'s ``StreamUnaryCall.write``, which still exists), and to "propose" once writes
entered the core through `Proposals.step_queued` instead of `RawNode.propose`. So a real
three-member kv cluster runs under the counters, its leader serves puts, and every stage must
have been counted on the leader, and every row of the table filled.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from benchmarks import fsyncs, kv_counters
from benchmarks.cluster import _read_counters
from benchmarks.cluster_report import MemberCounters, Results, raft_loop_table
from benchmarks.clusters import Timing, running_cluster
from benchmarks.servers import ServerOptions
from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

PUTS = 20
#: Faster than etcd's defaults, so that the first election takes well under a second.
TIMING = Timing(heartbeat_ms=50, election_ms=500)


def test_a_leader_serving_puts_runs_every_stage_the_counters_time(tmp_path: Path) -> None:
    options = ServerOptions(tmp_path, kv_command=fsyncs.KV_COUNTERS_COMMAND, start_timeout=60)
    with running_cluster("kv", options, timing=TIMING) as cluster:
        leader = cluster.leader()
        before = _read_counters(cluster, leader)
        with grpc.insecure_channel(cluster.endpoints[leader]) as channel:
            stub = rpc_pb2_grpc.KVStub(channel)
            for i in range(PUTS):
                stub.Put(rpc_pb2.PutRequest(key=b"k%d" % i, value=b"v"), timeout=10)
        after = _read_counters(cluster, leader)
    never_run = [name for name in kv_counters.STAGES if not after.get(f"{name}.calls")]
    assert not never_run, f"stages the leader never ran: {never_run}"
    window = {name: after[name] - before.get(name, 0.0) for name in after}
    counters = MemberCounters("kv", "puts", "m0", "leader", PUTS, window)
    rows = raft_loop_table(Results(counters=[counters])).splitlines()[2:]
    empty = [row for row in rows if row.endswith("| - |")]
    assert not empty, f"rows the leader's counters leave empty: {empty}"
