"""Group commit: concurrent writes share fsyncs, and nothing is answered before its fsync.

`kv serve` has no group committer of its own: its Raft loop writes one Ready at a time with
one fsync, and every write proposed while that fsync runs waits for the next Ready, so they
share the next fsync. These tests watch the write-ahead log's fsyncs (`kv.wal.WAL.sync`,
wrapped by `SpyFsync`) under an in-process member.

Deterministic without timing: a test that needs an fsync to be "in progress" holds it there
with a threading.Event (the fsync runs in a worker thread while the event loop serves on),
and waits for the writes it starts to reach the member (`arrivals`) before letting it go.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.raftpb import raft_pb2
from kv.client import KVClient
from kv.server.errors import EtcdError
from kv.server.requests.server import Server
from kv.wal import WAL, wal_dir

MakeMember = Callable[..., Awaitable[Any]]  # the `make_member` fixture of ../conftest.py

WRITERS = 50
#: How long a test waits for something that must happen (a failure if it does not).
PATIENCE = 10.0


class SpyFsync:
    """Counts the log's fsyncs; can hold the first one, can make them fail.

    ``hold``: the first fsync sets ``entered`` and waits for ``release`` (set by the test)
    before it really syncs. ``fail``: every fsync raises EIO (after the hold, if any).
    """

    def __init__(self, *, hold: bool = False, fail: bool = False) -> None:
        self.hold, self.fail = hold, fail
        self.entered, self.release = threading.Event(), threading.Event()
        self.syncs = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap `WAL.sync` with this spy until the test ends."""
        original = WAL.sync

        def sync(wal: WAL) -> None:
            self._sync(wal, original)

        monkeypatch.setattr(WAL, "sync", sync)

    def _sync(self, wal: WAL, original: Callable[[WAL], None]) -> None:
        self.syncs += 1
        if self.hold and self.syncs == 1:
            self.entered.set()
            self.release.wait(PATIENCE)
        if self.fail:
            raise OSError(errno.EIO, "injected fsync failure")
        original(wal)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, PATIENCE), "no fsync started"


class Arrivals:
    """Counts the puts that reached the member: each one is proposed to Raft before the event
    loop runs anything else (no await between the count and the proposal)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap `Server.put` with this counter until the test ends."""
        original = Server.put

        async def put(server: Server, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
            self.count += 1
            return await original(server, request)

        monkeypatch.setattr(Server, "put", put)

    async def wait_for(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE
        while self.count < count:
            assert loop.time() < deadline, f"only {self.count} of {count} puts arrived"
            await asyncio.sleep(0.001)


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> Iterator[Arrivals]:
    counter = Arrivals()
    counter.install(monkeypatch)
    yield counter


async def started(make_member: MakeMember) -> Any:
    """A member whose start-up proposals (its own attributes, the cluster version) are all
    applied: two puts in a row, so that the next fsyncs are the test's writes' only."""
    member = await make_member()
    async with member.client() as client:
        await client.put(b"warm-up", b"1")
        await client.put(b"warm-up", b"2")
    return member


def puts(client: KVClient, first: int, last: int) -> list[asyncio.Future[Any]]:
    return [asyncio.ensure_future(client.put(b"key-%d" % n, b"v")) for n in range(first, last + 1)]


async def test_writes_arriving_during_an_fsync_share_the_next_one(
    make_member: MakeMember, monkeypatch: pytest.MonkeyPatch, arrivals: Arrivals
) -> None:
    member = await started(make_member)
    spy = SpyFsync(hold=True)
    spy.install(monkeypatch)
    async with member.client() as client:
        first = puts(client, 1, 1)
        await spy.wait_entered()  # the first write's fsync runs, and is held
        later = puts(client, 2, WRITERS)
        await arrivals.wait_for(arrivals.count + WRITERS - 1)
        spy.release.set()
        await asyncio.gather(*first, *later)
    assert spy.syncs == 2


async def test_a_write_is_not_answered_before_its_fsync_completes(
    make_member: MakeMember, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await started(make_member)
    spy = SpyFsync(hold=True)
    spy.install(monkeypatch)
    async with member.client() as client:
        (write,) = puts(client, 1, 1)
        await spy.wait_entered()
        await asyncio.sleep(0.05)  # time for a wrong answer to arrive; a right one cannot
        assert not write.done()
        spy.release.set()
        await write
    assert spy.syncs == 1


async def test_a_write_after_the_last_fsync_ended_gets_its_own(
    make_member: MakeMember, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await started(make_member)
    spy = SpyFsync()
    spy.install(monkeypatch)
    async with member.client() as client:
        await client.put(b"a", b"1")
        await client.put(b"b", b"1")
    assert spy.syncs == 2


async def test_every_answered_write_is_in_the_log_in_order(make_member: MakeMember) -> None:
    member = await started(make_member)
    async with member.client() as client:
        await asyncio.gather(*puts(client, 1, WRITERS))
    await member.stop()
    wal, contents = WAL.open(wal_dir(member.data_dir))
    wal.close()
    indexes = [entry.Index for entry in contents.entries]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    normal = [entry for entry in contents.entries if entry.Type == raft_pb2.EntryNormal]
    keys = {InternalRaftRequest.FromString(entry.Data).put.key for entry in normal}
    assert {b"key-%d" % n for n in range(1, WRITERS + 1)} <= keys
    assert contents.state.commit == indexes[-1]  # the hard state after its entries


async def test_an_fsync_error_reaches_every_write_waiting_on_it(
    make_member: MakeMember, monkeypatch: pytest.MonkeyPatch, arrivals: Arrivals
) -> None:
    member = await started(make_member)
    spy = SpyFsync(hold=True, fail=True)
    spy.install(monkeypatch)
    async with member.client() as client:
        first = puts(client, 1, 1)
        await spy.wait_entered()
        queued = puts(client, 2, WRITERS)
        await arrivals.wait_for(arrivals.count + WRITERS - 1)
        spy.release.set()
        results = await asyncio.gather(*first, *queued, return_exceptions=True)
    assert {str(result) for result in results} == {"etcdserver: server stopped"}
    assert spy.syncs == 1  # the queued writes never got an fsync of their own


async def test_a_member_refuses_writes_after_an_fsync_error(
    make_member: MakeMember, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await started(make_member)
    SpyFsync(fail=True).install(monkeypatch)
    async with member.client() as client:
        with pytest.raises(EtcdError, match=r"^etcdserver: server stopped$"):
            await client.put(b"a", b"1")
        monkeypatch.undo()
        with pytest.raises(EtcdError, match=r"^etcdserver: server stopped$"):
            await client.put(b"b", b"1")
