"""The peer stream: Raft messages between two real transports over loopback TCP.

Each test starts members of its own: a `PeerTransport` whose receiving end (`InboundStream`) is
served by a plain ``loop.create_server`` on a free port, and a recording inbox. What a member
receives is awaited, never slept for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import uvloop

from kv.api.etcdserverpb import rpc_pb2
from kv.api.raftpb import raft_pb2
from kv.raft import Message, MessageType
from kv.server.peers.frames import MAGIC, FrameError, FrameReader, Hello, frame
from kv.server.peers.inbound import InboundStream
from kv.server.peers.outbound import QUEUE_SIZE, _Link
from kv.server.peers.transport import PeerTransport, RaftInbox

CLUSTER = 0xC1
WAIT = 5.0  # seconds: only a broken stream takes this long


# -- frames -----------------------------------------------------------------------------------


def test_frames_in_one_read_come_out_whole_and_in_order() -> None:
    reader = FrameReader()
    assert [bytes(f) for f in reader.feed(frame(b"one") + frame(b"") + frame(b"three"))] == [
        b"one",
        b"",
        b"three",
    ]


def test_a_frame_split_across_reads_comes_out_once_complete() -> None:
    reader = FrameReader()
    data = frame(b"a longer payload") + frame(b"next")
    got = [bytes(f) for i in range(len(data)) for f in reader.feed(data[i : i + 1])]
    assert got == [b"a longer payload", b"next"]


def test_a_frame_over_the_limit_is_an_error() -> None:
    with pytest.raises(FrameError):
        FrameReader(max_frame=8).feed(frame(b"123456789"))


def test_a_hello_says_who_sends_and_for_which_cluster() -> None:
    data = Hello(member_id=0xAB, cluster_id=CLUSTER).encode()
    assert data.startswith(MAGIC)
    (payload,) = FrameReader().feed(data[len(MAGIC) :])
    assert Hello.decode(payload) == Hello(0xAB, CLUSTER)


# -- members ----------------------------------------------------------------------------------


@dataclass
class Member:
    """A transport with a recording inbox and a listener for its peers' streams."""

    transport: PeerTransport
    delivered: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    unreachable: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    removed_ids: set[int] = field(default_factory=set)
    told_removed: asyncio.Event = field(default_factory=asyncio.Event)
    server: asyncio.Server | None = None
    port: int = 0

    @classmethod
    def make(cls, member_id: int, cluster_id: int = CLUSTER) -> Member:
        member = cls(PeerTransport(member_id, cluster_id))

        async def no_snapshot() -> raft_pb2.Snapshot:
            raise AssertionError("no snapshot in these tests")

        member.transport.attach(
            RaftInbox(
                deliver=member.delivered.put_nowait,
                unreachable=member.unreachable.put_nowait,
                snapshot_status=lambda member_id, ok: None,
                snapshot=no_snapshot,
                members=rpc_pb2.MemberListResponse,
                is_removed=member.removed_ids.__contains__,
                removed=member.told_removed.set,
            )
        )
        return member

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: InboundStream(self.transport), "127.0.0.1", self.port
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """The member's process goes away: its listener and every stream to it close."""
        assert self.server is not None
        self.server.close()
        await self.transport.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def next_delivered(self) -> Message:
        return await asyncio.wait_for(self.delivered.get(), WAIT)


async def connected(sender: Member, peer: Member) -> None:
    """Wait until ``sender``'s stream to ``peer`` has been taken."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(WAIT):
        while peer.transport.member_id not in sender.transport.connected_since(loop.time()):
            await asyncio.sleep(0.01)


def vote(frm: int, to: int, term: int = 2) -> Message:
    return Message(type=MessageType.VOTE, to=to, from_=frm, term=term, index=7, log_term=1)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Member, Member]]:
    """Members 1 and 2 of one cluster, 1 streaming to 2."""
    one, two = Member.make(1), Member.make(2)
    await two.listen()
    one.transport.set_peer(2, (two.url,))
    yield one, two
    await one.transport.close()
    await two.stop_listening()


# -- the stream -------------------------------------------------------------------------------


async def test_messages_arrive_in_the_order_they_were_sent(pair: tuple[Member, Member]) -> None:
    one, two = pair
    sent = tuple(vote(1, 2, term) for term in range(2, 40))
    one.transport.send(sent[:10])
    await connected(one, two)
    one.transport.send(sent[10:])
    assert [await two.next_delivered() for _ in sent] == list(sent)


async def test_everything_queued_in_one_loop_turn_goes_in_one_frame(
    pair: tuple[Member, Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = pair
    frames: list[int] = []
    monkeypatch.setattr(two.transport, "count_received", lambda sender, size: frames.append(size))
    await connected(one, two)
    for term in range(2, 12):
        one.transport.send((vote(1, 2, term),))
    for _ in range(10):
        await two.next_delivered()
    assert frames == [one.transport.sent_bytes[2]]


async def test_a_stream_from_another_cluster_is_refused_with_etcds_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stranger, two = Member.make(1, cluster_id=0xBAD), Member.make(2)
    await two.listen()
    stranger.transport.set_peer(2, (two.url,))
    stranger.transport.send((vote(1, 2),))
    try:
        assert await asyncio.wait_for(stranger.unreachable.get(), WAIT) == 2
        assert two.delivered.empty()
        assert not stranger.told_removed.is_set()
        assert "refused this member's stream: request cluster ID mismatch (got bad want c1)" in (
            caplog.text
        )
    finally:
        await stranger.transport.close()
        await two.stop_listening()


async def test_a_removed_member_is_refused_and_learns_it_was_removed(
    pair: tuple[Member, Member],
) -> None:
    one, two = pair
    two.removed_ids.add(1)
    one.transport.send((vote(1, 2),))
    await asyncio.wait_for(one.told_removed.wait(), WAIT)
    assert two.delivered.empty()


async def test_a_member_removed_while_its_stream_is_open_is_refused_at_its_next_message(
    pair: tuple[Member, Member],
) -> None:
    one, two = pair
    await connected(one, two)
    two.removed_ids.add(1)
    one.transport.send((vote(1, 2),))
    await asyncio.wait_for(one.told_removed.wait(), WAIT)
    assert two.delivered.empty()


async def test_a_blocked_peer_is_neither_sent_to_nor_heard_from(
    pair: tuple[Member, Member],
) -> None:
    one, two = pair
    await connected(one, two)
    one.transport.blocked = {2}
    one.transport.send((vote(1, 2, term=5),))  # not sent
    assert 2 not in one.transport.connected()  # a cut-off peer does not count as connected
    one.transport.blocked = set()
    two.transport.blocked = {1}
    one.transport.send((vote(1, 2, term=6),))  # sent, and not taken
    async with asyncio.timeout(WAIT):
        while 1 not in two.transport.received_bytes:
            await asyncio.sleep(0.01)
    two.transport.blocked = set()
    one.transport.send((vote(1, 2, term=7),))
    assert (await two.next_delivered()).term == 7
    assert two.delivered.empty()


async def test_a_full_queue_drops_and_reports_the_peer_unreachable() -> None:
    one = Member.make(1)
    one.transport.set_peer(2, ("http://127.0.0.1:9",))  # nobody listens: the queue only grows
    try:
        one.transport.send(tuple(vote(1, 2) for _ in range(QUEUE_SIZE + 1)))
        assert one.unreachable.get_nowait() == 2  # said before send returned: it never waits
    finally:
        await one.transport.close()


async def test_a_message_sent_while_the_peer_restarts_reaches_the_restarted_peer(
    pair: tuple[Member, Member],
) -> None:
    one, two = pair
    await connected(one, two)
    await two.stop_listening()
    assert await asyncio.wait_for(one.unreachable.get(), WAIT) == 2
    restarted = Member.make(2)
    restarted.port = two.port
    await restarted.listen()
    two.server = restarted.server  # the fixture stops the restarted one
    two.transport = restarted.transport
    one.transport.send((vote(1, 2, term=9),))  # the first message to the new process
    assert (await restarted.next_delivered()).term == 9


def test_a_link_whose_connection_is_gone_takes_writes_without_raising_on_uvloop() -> None:
    """The stream learns of a lost connection a loop turn after the link does, and may flush
    into the link meanwhile; uvloop raises on a write to a closed transport (asyncio's loop
    drops it), which once broke a member's flush with a RuntimeError."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, link = await loop.create_connection(lambda: _Link(loop, lambda: None), "127.0.0.1", port)
        server.close()
        link.close()
        await asyncio.wait_for(link.closed, WAIT)
        link.write([b"a frame after the close"])

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
