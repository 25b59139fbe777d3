"""The peer transport: Raft messages between the members of a real cluster (chapter 4).

The Raft core hands out messages and takes messages in; moving them between processes is the
application's job. etcd does it over HTTP streams between peer URLs (``rafthttp``); kv uses
one gRPC service of its own, ``kvpeerpb.Peer``, served on ``--listen-peer-urls``:

* every member keeps one long-lived client stream (``Peer.Stream``) to each peer and writes
  that peer's messages into it, in order. A message is never waited for: `PeerTransport.send`
  queues it and returns, because Raft is built for a network that loses messages (a full
  queue drops, as etcd's does, and Raft sends again);
* a MsgSnap carries the sender's whole backend, so it goes alone in a unary call
  (``Peer.SendSnapshot``) whose answer says the snapshot arrived; Raft is told either way
  (``report_snapshot``), and a peer that cannot be reached is reported too
  (``report_unreachable``) so the leader goes back to probing it;
* ``Peer.SetFaults`` is kv's fault hook: a member told to block some peers neither sends to
  them nor accepts what they send. Tests and ``kv cluster partition`` cut a member off with
  it; nothing in etcd corresponds to it.
* ``Peer.GetMembers`` lets a member that joins an existing cluster learn the members (and its
  own id) from a peer, as etcd's joining members ask for ``/members``.
* ``Peer.GetFaults`` doubles as the round-trip probe (chapter 10): every `PROBE_SECONDS` a
  member times one call to each peer, as etcd's rafthttp prober times a GET to the peer
  URL, for ``etcd_network_peer_round_trip_time_seconds``;
* ``Peer.LeaseRenew`` and ``Peer.LeaseTimeToLive`` (chapter 7) carry the lease requests only
  the leader answers from a follower to the leader, as etcd's followers forward them over HTTP
  to the leader's peer URL (``leasehttp``); the member's `LeaseAnswers` answer them.

The receiving end, `PeerService`, is `kv.server.peers.peer_service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import grpc

from kv.api.etcdserverpb import rpc_pb2
from kv.api.peerpb import peer_pb2, peer_pb2_grpc
from kv.api.raftpb import raft_pb2
from kv.raft import Message, MessageType
from kv.server import raft_wire
from kv.server.metrics.histogram import ROUND_TRIP_BUCKETS, Histogram

log = logging.getLogger(__name__)

#: Messages waiting for one peer before new ones are dropped (etcd: streamBufSize 4096).
QUEUE_SIZE = 4096
#: Messages to one peer sent in one stream write, at most.
BATCH_MESSAGES = 256
#: Pause before reconnecting to a peer that could not be reached.
RECONNECT_SECONDS = 0.1
#: A snapshot carries a whole backend: let it be as large as gRPC allows.
PEER_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.so_reuseport", 0),
]
#: A peer that comes back is redialled within a tenth of a second, as etcd's rafthttp does,
#: not after gRPC's default backoff (up to two minutes).
PEER_CHANNEL_OPTIONS = [
    *PEER_GRPC_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]
SNAPSHOT_TIMEOUT_SECONDS = 60.0
#: How often each peer's round trip is timed (etcd: rafthttp's proberInterval, 4 s).
PROBE_SECONDS = 4.0
#: How long one forwarded lease request may take (the caller retries within its own timeout).
LEASE_FORWARD_SECONDS = 2.0
#: The gRPC metadata key a member's messages carry its cluster id in (hex).
CLUSTER_ID_KEY = "kv-cluster-id"
#: What a member answers a removed member that still sends it messages.
REMOVED_TEXT = "the member has been permanently removed from the cluster"


def dial_target(url: str) -> str:
    """The gRPC target for a peer URL (``http://127.0.0.1:2380`` -> ``127.0.0.1:2380``)."""
    return urlsplit(url).netloc


@dataclass(slots=True)
class RaftInbox:
    """What the transport hands the member: callbacks into its Raft loop."""

    deliver: Callable[[Message], None]
    unreachable: Callable[[int], None]
    snapshot_status: Callable[[int, bool], None]
    #: The snapshot to ship in a MsgSnap, made when it is sent: the backend as of now, and
    #: the applied index, its term and the configuration as of now (etcd:
    #: createMergedSnapshotMessage). The core's stored snapshot may predate the recipient.
    snapshot: Callable[[], Awaitable[raft_pb2.Snapshot]]
    #: The member list for joining members.
    members: Callable[[], rpc_pb2.MemberListResponse]
    #: Was this member id removed from the cluster?
    is_removed: Callable[[int], bool]
    #: A peer told us that *we* were removed (etcd: rafthttp's 410 Gone).
    removed: Callable[[], None]


@dataclass(slots=True)
class _Peer:
    """One peer: where it is, and the task that streams its queue to it."""

    member_id: int
    urls: tuple[str, ...]
    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    task: asyncio.Task[None] | None = None
    #: Keeps the connection up and notes since when it has been (etcd: ActiveSince).
    watch: asyncio.Task[None] | None = None
    connected_since: float | None = None
    probe: asyncio.Task[None] | None = None


class PeerTransport:
    """Sends a member's Raft messages to its peers, and receives theirs (from
    `kv.server.peers.peer_service.PeerService`)."""

    def __init__(self, member_id: int, cluster_id: int) -> None:
        self.member_id = member_id
        self.cluster_id = cluster_id
        self._inbox: RaftInbox | None = None
        self._blocked: set[int] = set()
        self._unblocked_at: dict[int, float] = {}
        self._peers: dict[int, _Peer] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._snapshot_tasks: set[asyncio.Task[None]] = set()
        # Chapter 10's metrics, by peer id: what went each way, and how long a round trip
        # takes (etcd_network_peer_sent_bytes_total and the rest; `kv.server.metrics`).
        self.sent_bytes: dict[int, int] = {}
        self.received_bytes: dict[int, int] = {}
        self.round_trip: dict[int, Histogram] = {}

    def attach(self, inbox: RaftInbox) -> None:
        """Hand what the peers send to ``inbox``: the member's Raft loop, which is built with
        this transport and attaches itself (etcd's rafthttp.Transport gets its Raft the same
        way, after the server it belongs to)."""
        self._inbox = inbox

    @property
    def inbox(self) -> RaftInbox:
        """Where received messages and reports go.

        Raises:
            RuntimeError: nothing was attached yet.
        """
        if self._inbox is None:
            raise RuntimeError("the peer transport has no inbox: attach the replica first")
        return self._inbox

    # -- who the peers are ------------------------------------------------------------------

    def set_peer(self, member_id: int, urls: tuple[str, ...]) -> None:
        """Know ``member_id`` at ``urls`` (a new member, or new URLs for a known one)."""
        if member_id == self.member_id or not urls:
            return
        known = self._peers.get(member_id)
        if known is not None and known.urls == urls:
            return
        self.remove_peer(member_id)
        peer = _Peer(member_id, urls)
        loop = asyncio.get_running_loop()
        peer.task = loop.create_task(self._stream_to(peer))
        peer.watch = loop.create_task(self._watch_connection(peer))
        peer.probe = loop.create_task(self._probe(peer))
        self._peers[member_id] = peer

    def remove_peer(self, member_id: int) -> None:
        peer = self._peers.pop(member_id, None)
        if peer is not None:
            for task in (peer.task, peer.watch, peer.probe):
                if task is not None:
                    task.cancel()

    # -- the fault hook -------------------------------------------------------------------

    @property
    def blocked(self) -> set[int]:
        return set(self._blocked)

    @blocked.setter
    def blocked(self, members: set[int]) -> None:
        now = asyncio.get_running_loop().time()
        for member in self._blocked - members:
            self._unblocked_at[member] = now
        self._blocked = set(members)

    # -- who is connected (etcd's strict reconfiguration checks ask) ----------------------

    async def _watch_connection(self, peer: _Peer) -> None:
        """Keep a connection to ``peer`` open even when nothing is sent (a follower sends
        nothing to other followers), and note since when it has been up: etcd's members
        keep streams to every peer, and its checks ask since when each has been active."""
        channel = self._channel(peer)
        loop = asyncio.get_running_loop()
        while True:
            state = channel.get_state(try_to_connect=True)
            if state is grpc.ChannelConnectivity.READY:
                if peer.connected_since is None:
                    peer.connected_since = loop.time()
            else:
                peer.connected_since = None
            await channel.wait_for_state_change(state)

    def connected_since(self, moment: float) -> set[int]:
        """The peers connected (and not cut off by the fault hook) without a break since
        ``moment``, event loop time (etcd: ActiveSince before ``moment``)."""
        connected = set()
        for member, peer in self._peers.items():
            if peer.connected_since is None or member in self._blocked:
                continue
            since = max(peer.connected_since, self._unblocked_at.get(member, 0.0))
            if since <= moment:
                connected.add(member)
        return connected

    async def _probe(self, peer: _Peer) -> None:
        """Time a small call to ``peer`` every `PROBE_SECONDS` (not while the fault hook cuts
        it off: a real partition would fail the probe too)."""
        histogram = self.round_trip.setdefault(peer.member_id, Histogram(ROUND_TRIP_BUCKETS))
        clock = asyncio.get_running_loop().time
        while True:
            if peer.member_id not in self._blocked:
                started = clock()
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self._stub(peer).GetFaults(
                        peer_pb2.GetFaultsRequest(), timeout=PROBE_SECONDS
                    )
                    histogram.observe(clock() - started)
            await asyncio.sleep(PROBE_SECONDS)

    @staticmethod
    def _count(table: dict[int, int], member_id: int, size: int) -> None:
        table[member_id] = table.get(member_id, 0) + size

    def count_received(self, batch: peer_pb2.MessageBatch) -> None:
        """Count a batch a peer sent us under its sender (etcd counts what it reads)."""
        if batch.messages:
            self._count(self.received_bytes, getattr(batch.messages[0], "from"), batch.ByteSize())

    def connected(self) -> set[int]:
        """The peers connected now (etcd: ActiveSince is not zero)."""
        return self.connected_since(asyncio.get_running_loop().time())

    @property
    def peer_ids(self) -> set[int]:
        return set(self._peers)

    # -- sending ------------------------------------------------------------------------------

    # --8<-- [start:send]
    def send(self, messages: tuple[Message, ...]) -> None:
        """Queue each message for its peer; never wait (Raft tolerates lost messages)."""
        for message in messages:
            peer = self._peers.get(message.to)
            if peer is None or message.to in self._blocked:
                continue
            if message.type is MessageType.SNAP:
                task = asyncio.get_running_loop().create_task(self._send_snapshot(peer, message))
                self._snapshot_tasks.add(task)
                task.add_done_callback(self._snapshot_tasks.discard)
                continue
            try:
                peer.queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning(
                    "dropped %s to %x: its send queue is full", message.type, peer.member_id
                )
                self.inbox.unreachable(peer.member_id)

    # --8<-- [end:send]

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return ((CLUSTER_ID_KEY, f"{self.cluster_id:x}"),)

    def check_cluster(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> None:
        """Refuse a peer of another cluster (etcd's rafthttp checks its X-Etcd-Cluster-ID
        header the same way): a member started with the wrong --initial-cluster-token, or with
        ``new`` where it should have joined, must not take part in our elections.

        Raises:
            PermissionError: etcd's text, naming both ids.
        """
        sent = dict(metadata or ()).get(CLUSTER_ID_KEY)
        want = f"{self.cluster_id:x}"
        if sent != want:
            raise PermissionError(f"request cluster ID mismatch (got {sent!s} want {want})")

    def _channel(self, peer: _Peer) -> grpc.aio.Channel:
        target = dial_target(peer.urls[0])
        channel = self._channels.get(target)
        if channel is None:
            channel = grpc.aio.insecure_channel(target, options=PEER_CHANNEL_OPTIONS)
            self._channels[target] = channel
        return channel

    def _stub(self, peer: _Peer) -> peer_pb2_grpc.PeerAsyncStub:
        return peer_pb2_grpc.PeerStub(self._channel(peer))

    async def forward_lease(self, member_id: int, method: str, request: Any) -> Any:
        """Call the lease RPC ``method`` (``LeaseRenew``, ``LeaseTimeToLive``) of the peer
        ``member_id`` (chapter 7), within a request timeout of `LEASE_FORWARD_SECONDS`.

        Raises:
            LookupError: this member does not know ``member_id``.
            grpc.aio.AioRpcError: the peer refused or could not be reached.
        """
        peer = self._peers.get(member_id)
        if peer is None:
            raise LookupError(f"no peer {member_id:x}")
        call = getattr(self._stub(peer), method)
        return await call(request, timeout=LEASE_FORWARD_SECONDS, metadata=self._metadata())

    async def _stream_to(self, peer: _Peer) -> None:
        """Keep a stream open to ``peer`` and write its queue into it, reconnecting on error.

        Each write takes every message waiting (up to `BATCH_MESSAGES`): under load a
        leader's appends, heartbeats and answers pile up while a write is in flight, and one
        write for all of them costs what one write for one did.
        """
        retry: peer_pb2.MessageBatch | None = None
        while True:
            batch = retry if retry is not None else await self._next_batch(peer)
            call = self._stub(peer).Stream(None, metadata=self._metadata())  # we write() to it
            try:
                while True:
                    if batch.messages:
                        await call.write(batch)
                        self._count(self.sent_bytes, peer.member_id, batch.ByteSize())
                    retry = None
                    batch = await self._next_batch(peer)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                # The call ended: the peer is down, or it refused us. Its status says which.
                if call.done() and await call.details() == REMOVED_TEXT:
                    self.inbox.removed()
                self.inbox.unreachable(peer.member_id)
                # A stream to a peer that restarted fails on its first write: that batch (a
                # vote, say) is written once more on a new stream at once, instead of being
                # lost until Raft's next timeout. Only once: then the peer is really away.
                retry = batch if retry is None else None
            finally:
                call.cancel()
            if retry is None:
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _next_batch(self, peer: _Peer) -> peer_pb2.MessageBatch:
        """Wait for a message to ``peer``; take it and every other one already waiting."""
        messages = [await peer.queue.get()]
        while len(messages) < BATCH_MESSAGES and not peer.queue.empty():
            messages.append(peer.queue.get_nowait())
        return peer_pb2.MessageBatch(
            messages=[raft_wire.message_to_pb(m) for m in messages if m.to not in self._blocked]
        )

    async def _send_snapshot(self, peer: _Peer, message: Message) -> None:
        """Send a MsgSnap with this member's backend; tell Raft how it went."""
        try:
            wire = raft_wire.message_to_pb(message)
            wire.snapshot.CopyFrom(await self.inbox.snapshot())
            log.info(
                "sending a snapshot at index %d to %x (%d bytes)",
                wire.snapshot.metadata.index,
                peer.member_id,
                len(wire.snapshot.data),
            )
            await self._stub(peer).SendSnapshot(
                wire, timeout=SNAPSHOT_TIMEOUT_SECONDS, metadata=self._metadata()
            )
        except Exception as error:  # any failure: Raft probes the peer again later
            log.warning("failed to send a snapshot to %x: %s", peer.member_id, error)
            self.inbox.snapshot_status(peer.member_id, False)
            self.inbox.unreachable(peer.member_id)
            return
        self.inbox.snapshot_status(peer.member_id, True)

    async def close(self) -> None:
        for member_id in list(self._peers):
            self.remove_peer(member_id)
        for task in list(self._snapshot_tasks):
            task.cancel()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    # -- receiving (called by PeerService) ----------------------------------------------------

    def receive(self, wire: raft_pb2.Message) -> None:
        """Hand a peer's message to Raft.

        Raises:
            PermissionError: the sender was removed from the cluster.
        """
        message = raft_wire.message_from_pb(wire)
        if self.inbox.is_removed(message.from_):
            raise PermissionError(REMOVED_TEXT)
        if message.from_ in self._blocked or message.to != self.member_id:
            return
        self.inbox.deliver(message)


async def fetch_members(
    peer_urls: tuple[str, ...], timeout: float = 2.0
) -> rpc_pb2.MemberListResponse:
    """Ask the first peer that answers for the member list (a joining member's first step).

    Raises:
        ConnectionError: no peer answered.
    """
    for url in peer_urls:
        with contextlib.suppress(grpc.aio.AioRpcError):
            async with grpc.aio.insecure_channel(dial_target(url)) as channel:
                stub: peer_pb2_grpc.PeerAsyncStub = peer_pb2_grpc.PeerStub(channel)
                return await stub.GetMembers(peer_pb2.GetMembersRequest(), timeout=timeout)
    raise ConnectionError(f"could not reach any peer of the cluster ({', '.join(peer_urls)})")
