"""Watches on a real three-member kv cluster (chapter 8).

* A watch on a follower sees the writes made through the leader: every member applies every
  entry, and its store hands each write to its own watchers.
* Watchers on every member, while a writer goes on and the leader is killed with SIGKILL,
  resume on another member from their last event's revision + 1 (etcd PR #15275: not from a
  reply's header revision + 1, which may be ahead of the events). Each sees every event
  exactly once, and every stream passes etcd's robustness checks (`tests.watchcheck`).
* A require-leader stream (``hasleader: true``, as etcdctl opens it) is refused with etcd's
  ``etcdserver: no leader`` on a member that has lost its quorum.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.client import KVClient
from kv.server.errors import EtcdError
from kv.watch import Event, WatchRequest
from tests.cluster.processes import ProcessCluster, wait_for
from tests.compat.servers import Server
from tests.watchcheck import ObservedWatch, check_watch, from_pb

pytestmark = pytest.mark.etcd

PREFIX = b"w/"
WRITES = 60
KILL_AFTER = 20


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    started = ProcessCluster.create("kv", tmp_path, 3)
    started.start()
    yield started
    started.stop()


def prefix_watch(start: int, *, prev_kv: bool = True) -> rpc_pb2.WatchRequest:
    create = rpc_pb2.WatchCreateRequest(
        key=PREFIX, range_end=b"w0", start_revision=start, prev_kv=prev_kv
    )
    return rpc_pb2.WatchRequest(create_request=create)


async def replies(
    endpoint: str, request: rpc_pb2.WatchRequest, metadata: tuple[tuple[str, str], ...] = ()
) -> AsyncIterator[rpc_pb2.WatchResponse]:
    """The replies of one Watch stream with one create request (the created reply skipped)."""
    async with grpc.aio.insecure_channel(endpoint) as channel:

        async def requests() -> AsyncIterator[rpc_pb2.WatchRequest]:
            yield request
            await asyncio.Event().wait()  # keep the stream open

        call = rpc_pb2_grpc.WatchStub(channel).Watch(requests(), metadata=metadata)
        async for reply in call:
            if not reply.created:
                yield reply


class ResumingWatcher:
    """Watches the prefix from revision 1; when its member dies, resumes on the next member
    from its last event's revision + 1. Records every reply as one `ObservedWatch`."""

    def __init__(self, members: list[Server], first: int) -> None:
        self.members, self.at = members, first
        self.watch = ObservedWatch(WatchRequest(PREFIX, b"w0", start_revision=1, prev_kv=True))
        self.resumes = 0

    @property
    def last_revision(self) -> int:
        events = self.watch.events()
        return events[-1].revision if events else 0

    async def run(self, alive: set[str]) -> None:
        while True:
            member = self.members[self.at % len(self.members)]
            if member.name not in alive:
                self.at += 1
                continue
            with contextlib.suppress(grpc.aio.AioRpcError):
                async for reply in replies(member.endpoint, prefix_watch(self.last_revision + 1)):
                    self.watch.replies.append(from_pb(reply))
            self.resumes += 1
            self.at += 1
            await asyncio.sleep(0.05)  # the member is gone: try the next one


async def write_all(endpoints: list[str], rng: random.Random, done: list[int]) -> None:
    """Puts and deletes on the prefix through any member that answers, retrying failures."""
    for number in range(WRITES):
        key = PREFIX + b"%d" % rng.randrange(5)
        for attempt in range(100):
            endpoint = endpoints[(number + attempt) % len(endpoints)]
            try:
                async with KVClient(endpoint, timeout=2.0) as client:
                    if rng.random() < 0.2:
                        await client.delete_range(key)
                    else:
                        await client.put(key, b"v%d" % number)
                done.append(number)
                break
            except (EtcdError, grpc.aio.AioRpcError):
                await asyncio.sleep(0.1)


async def history(endpoint: str) -> list[Event]:
    """The whole history of the prefix: a watch from revision 1 replays it in its first reply
    (under 1000 revisions)."""
    stream = replies(endpoint, prefix_watch(1))
    first = await asyncio.wait_for(anext(stream), 10)
    await stream.aclose()
    return list(from_pb(first).events)


async def test_a_watch_on_a_follower_sees_writes_made_through_the_leader(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    follower = next(m for m in cluster.members if m is not leader)
    stream = replies(follower.endpoint, prefix_watch(0, prev_kv=False))
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.3)  # the watch is created before the write (it starts at "now")
    async with KVClient(leader.endpoint) as client:
        written = await client.put(PREFIX + b"x", b"1")
    reply = await asyncio.wait_for(first, 10)
    assert [(e.kv.key, e.kv.mod_revision) for e in reply.events] == [
        (PREFIX + b"x", written.header.revision)
    ]
    await stream.aclose()


async def test_watchers_resuming_across_a_leader_kill_see_every_event_once(
    cluster: ProcessCluster,
) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    leader, _ = await cluster.agreed_leader()
    survivors = [m for m in cluster.members if m is not leader]
    alive = {m.name for m in cluster.members}
    watchers = [ResumingWatcher(cluster.members, at) for at in range(3)]
    watching = [asyncio.create_task(w.run(alive)) for w in watchers]
    done: list[int] = []
    writer = asyncio.create_task(
        write_all([m.endpoint for m in survivors], random.Random(seed), done)
    )

    async def enough_written() -> bool | None:
        return len(done) >= KILL_AFTER or None

    await wait_for(enough_written, "the first writes")
    cluster.kill(leader)
    alive.discard(leader.name)
    await asyncio.wait_for(writer, 120)
    reference = await history(survivors[0].endpoint)
    final = reference[-1].revision

    async def all_caught_up() -> bool | None:
        return all(w.last_revision >= final for w in watchers) or None

    await wait_for(all_caught_up, "every watcher at the last revision", timeout=30)
    for task in watching:
        task.cancel()
    assert sum(w.resumes for w in watchers) >= 1, "the leader's watcher had to resume"
    for watcher in watchers:
        problems = check_watch(watcher.watch, reference)
        assert not problems, (seed, problems)
        got = [(e.revision, e.kv.key) for e in watcher.watch.events()]
        assert got == [(e.revision, e.kv.key) for e in reference], seed


async def test_a_require_leader_watch_is_refused_without_a_leader(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    lonely = leader
    for member in cluster.members:
        if member is not lonely:
            cluster.kill(member)

    async def refused() -> grpc.aio.AioRpcError | None:
        stream = replies(lonely.endpoint, prefix_watch(0), (("hasleader", "true"),))
        try:
            await asyncio.wait_for(anext(stream), 2)
        except grpc.aio.AioRpcError as error:
            return error
        except TimeoutError:
            return None
        finally:
            await stream.aclose()
        return None

    error = await wait_for(refused, "a refused require-leader watch", timeout=30)
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
