"""CPU per write and per read through a member's `Proposals` alone, without gRPC (issue 12).

A cluster benchmark's CPU per request moves by a tenth or more between runs on a busy machine,
far more than a change of a few microseconds in the clients' side of the Raft loop. This one
drives `kv.server.replica.clients.proposals.Proposals` over a real `RawNode` that leads alone, on
uvloop, with the benchmark playing the Ready loop (`tests.raftnet`'s, as chapter 4's tests of
`Proposals` play it): batches of writes are proposed, stepped into the core together,
persisted, committed and answered; batches of linearizable reads wait for the applied index
(a lone voter needs no ReadIndex round). It prints the CPU of the
thread per write and per read, the best of a few runs, so that two commits can be compared::

    PYTHONPATH=<a checkout> python -m benchmarks.proposals_cpu
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import uvloop

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.server.replica.clients.proposals import Proposals
from kv.server.replica.timing import Timing
from tests.raftnet import handle_ready, lone_leader

#: Requests in flight together: each batch is one turn of the loop.
BATCH = 64
ROUNDS = 200
RUNS = 5


async def _measure() -> dict[str, float]:
    node, storage = lone_leader()
    applied = [node.applied_index]
    proposals = Proposals(
        node, Timing(), wake=lambda: None, check_serving=lambda: None, applied=lambda: applied[0]
    )

    async def writes() -> None:
        calls = [proposals.propose(_put()) for _ in range(BATCH)]
        waiting = [asyncio.ensure_future(call) for call in calls]
        await asyncio.sleep(0)  # every write queues itself
        proposals.step_queued()
        handle_ready(node, storage)  # the entries, persisted
        for entry in handle_ready(node, storage).committed_entries:  # committed: answered
            request_id = InternalRaftRequest.FromString(entry.data).header.ID
            proposals.written(request_id, rpc_pb2.PutResponse())
        await asyncio.gather(*waiting)
        applied[0] = node.commit_index
        proposals.ticked()  # as the member's ticker does, every heartbeat

    async def reads() -> None:
        await asyncio.gather(*(proposals.linearizable_read() for _ in range(BATCH)))
        proposals.ticked()

    return {
        "write": await _best(writes),
        "linearizable read (lone voter)": await _best(reads),
    }


def _put() -> InternalRaftRequest:
    return InternalRaftRequest(put=rpc_pb2.PutRequest(key=b"k", value=b"v"))


async def _best(batch: Callable[[], Awaitable[None]]) -> float:
    """The fewest CPU microseconds per request over `RUNS` runs (after a warm-up)."""
    for _ in range(ROUNDS // 4):
        await batch()
    best = float("inf")
    for _ in range(RUNS):
        started = time.thread_time()
        for _ in range(ROUNDS):
            await batch()
        best = min(best, (time.thread_time() - started) / (ROUNDS * BATCH) * 1e6)
    return best


def main() -> int:
    for name, micros in uvloop.run(_measure()).items():
        print(f"{name}: {micros:.2f} µs of CPU each (best of {RUNS})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
