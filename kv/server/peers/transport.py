"""The peer transport: Raft messages between the members of a real cluster (chapter 4).

The Raft core hands out messages and takes messages in; moving them between processes is the
application's job. etcd does it over HTTP streams between peer URLs (``rafthttp``); kv does
it over the same port, ``--listen-peer-urls``, in two ways:

* every member keeps one long-lived connection to each peer and writes that peer's messages
  into it, in order, as length-prefixed frames (`kv.server.peers.frames`; the sending end is
  `kv.server.peers.outbound`, the receiving end `kv.server.peers.inbound`). No gRPC: the
  messages are Raft's hot path, and a plain stream costs a member a fraction of what a gRPC
  stream write did. A message is never waited for: `PeerTransport.send` queues it and
  returns, because Raft is built for a network that loses messages (a full queue drops, as
  etcd's does, and Raft sends again);
* everything else is a unary call of kv's gRPC service ``kvpeerpb.Peer``. A MsgSnap
  carries the sender's whole backend, so it goes alone in a unary call
  (``Peer.SendSnapshot``) whose answer says the snapshot arrived; Raft is told either way
  (``report_snapshot``), and a peer that cannot be reached is reported too
  (``report_unreachable``) so the leader goes back to probing it.
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

Both kinds arrive on one port: the peer URL's front (`kv.server.front`) hands a connection
that opens with `frames.MAGIC` to an `InboundStream` and the others to the gRPC service,
`PeerService` (`kv.server.peers.peer_service`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc

from kv.api.etcdserverpb import rpc_pb2
from kv.api.peerpb import peer_pb2, peer_pb2_grpc
from kv.api.raftpb import raft_pb2
from kv.raft import Message, MessageType
from kv.server import raft_wire
from kv.server.metrics.histogram import ROUND_TRIP_BUCKETS, Histogram
from kv.server.peers.frames import Hello
from kv.server.peers.outbound import OutboundStream
from kv.server.wire_bytes import EntryEncodings, batch_bytes

log = logging.getLogger(__name__)

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


def host_and_port(url: str) -> tuple[str, int]:
    """Where a peer URL's stream connects (``http://127.0.0.1:2380`` -> ``127.0.0.1``, 2380).

    Raises:
        ValueError: the URL names no port.
    """
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"a peer URL needs a host and a port: {url}")
    return parts.hostname, parts.port


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
    """One peer: where it is, the stream of messages to it, and the tasks that keep it."""

    member_id: int
    urls: tuple[str, ...]
    stream: OutboundStream
    task: asyncio.Task[None]
    probe: asyncio.Task[None]


class PeerTransport:
    """Sends a member's Raft messages to its peers, and receives theirs (from
    `kv.server.peers.peer_service.PeerService`)."""

    def __init__(
        self, member_id: int, cluster_id: int, encodings: EntryEncodings | None = None
    ) -> None:
        self.member_id = member_id
        self.cluster_id = cluster_id
        #: Each entry's encoding, made once: shared with the WAL (`RaftDisk.encodings`).
        self.encodings = encodings if encodings is not None else EntryEncodings()
        self._inbox: RaftInbox | None = None
        self._blocked: set[int] = set()
        self._unblocked_at: dict[int, float] = {}
        self._peers: dict[int, _Peer] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._snapshot_tasks: set[asyncio.Task[None]] = set()
        self._inbound: set[asyncio.BaseTransport] = set()
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
        stream = OutboundStream(member_id, *host_and_port(urls[0]), owner=self)
        loop = asyncio.get_running_loop()
        task = loop.create_task(stream.run())
        probe = loop.create_task(self._probe(member_id, urls))
        self._peers[member_id] = _Peer(member_id, urls, stream, task, probe)

    def remove_peer(self, member_id: int) -> None:
        peer = self._peers.pop(member_id, None)
        if peer is not None:
            peer.task.cancel()
            peer.probe.cancel()

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

    def connected_since(self, moment: float) -> set[int]:
        """The peers connected (and not cut off by the fault hook) without a break since
        ``moment``, event loop time (etcd: ActiveSince before ``moment``)."""
        connected = set()
        for member, peer in self._peers.items():
            opened = peer.stream.connected_since
            if opened is None or member in self._blocked:
                continue
            since = max(opened, self._unblocked_at.get(member, 0.0))
            if since <= moment:
                connected.add(member)
        return connected

    async def _probe(self, member_id: int, urls: tuple[str, ...]) -> None:
        """Time a small call to the peer every `PROBE_SECONDS` (not while the fault hook cuts
        it off: a real partition would fail the probe too)."""
        histogram = self.round_trip.setdefault(member_id, Histogram(ROUND_TRIP_BUCKETS))
        clock = asyncio.get_running_loop().time
        while True:
            if member_id not in self._blocked:
                started = clock()
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self._stub(urls).GetFaults(
                        peer_pb2.GetFaultsRequest(), timeout=PROBE_SECONDS
                    )
                    histogram.observe(clock() - started)
            await asyncio.sleep(PROBE_SECONDS)

    def count_received(self, member_id: int, size: int) -> None:
        """Count ``size`` bytes of messages ``member_id`` sent us (etcd counts what it reads)."""
        received = self.received_bytes
        received[member_id] = received.get(member_id, 0) + size

    def count_sent(self, member_id: int, size: int) -> None:
        """Count ``size`` bytes of messages written to ``member_id``."""
        sent = self.sent_bytes
        sent[member_id] = sent.get(member_id, 0) + size

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
            if not peer.stream.push(message):
                log.warning(
                    "dropped %s to %x: its send queue is full", message.type, peer.member_id
                )
                self.inbox.unreachable(peer.member_id)

    # --8<-- [end:send]

    # -- what the streams ask (`kv.server.peers.outbound.StreamOwner`) ----------------------

    @property
    def hello(self) -> bytes:
        """What opens each of this member's streams: who we are and which cluster."""
        return Hello(self.member_id, self.cluster_id).encode()

    def encode(self, member_id: int, messages: list[Message]) -> bytes:
        """A stream frame's payload: ``messages`` as one ``MessageBatch``, unless the fault
        hook cut ``member_id`` off since they were queued."""
        if member_id in self._blocked:
            return b""
        return batch_bytes(messages, self.encodings)

    def stream_broken(self, member_id: int, reason: str | None) -> None:
        """The stream to ``member_id`` broke or was refused: tell Raft (etcd's transport
        reports the peer unreachable), and learn that we were removed if that is why."""
        if reason == REMOVED_TEXT:
            self.inbox.removed()
        self.inbox.unreachable(member_id)

    # -- the checks a peer passes -------------------------------------------------------------

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return ((CLUSTER_ID_KEY, f"{self.cluster_id:x}"),)

    def check_cluster(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> None:
        """Refuse a gRPC call from a peer of another cluster (etcd's rafthttp checks its
        X-Etcd-Cluster-ID header the same way): a member started with the wrong
        --initial-cluster-token, or with ``new`` where it should have joined, must not take
        part in our elections.

        Raises:
            PermissionError: etcd's text, naming both ids.
        """
        sent = dict(metadata or ()).get(CLUSTER_ID_KEY)
        want = f"{self.cluster_id:x}"
        if sent != want:
            raise PermissionError(f"request cluster ID mismatch (got {sent!s} want {want})")

    def accept(self, hello: Hello) -> None:
        """Check the hello of a peer's stream before taking any of its messages: the same
        cluster check, and a member removed from the cluster is refused (etcd: 410 Gone).

        Raises:
            PermissionError: etcd's text.
        """
        self.check_cluster(((CLUSTER_ID_KEY, f"{hello.cluster_id:x}"),))
        if self.inbox.is_removed(hello.member_id):
            raise PermissionError(REMOVED_TEXT)

    def track_inbound(self, connection: asyncio.BaseTransport) -> None:
        """Note a peer's stream to this member, to be closed when the member stops."""
        self._inbound.add(connection)

    def untrack_inbound(self, connection: asyncio.BaseTransport) -> None:
        self._inbound.discard(connection)

    # -- gRPC calls to a peer -----------------------------------------------------------------

    def _channel(self, urls: tuple[str, ...]) -> grpc.aio.Channel:
        target = dial_target(urls[0])
        channel = self._channels.get(target)
        if channel is None:
            channel = grpc.aio.insecure_channel(target, options=PEER_CHANNEL_OPTIONS)
            self._channels[target] = channel
        return channel

    def _stub(self, urls: tuple[str, ...]) -> peer_pb2_grpc.PeerAsyncStub:
        return peer_pb2_grpc.PeerStub(self._channel(urls))

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
        call = getattr(self._stub(peer.urls), method)
        return await call(request, timeout=LEASE_FORWARD_SECONDS, metadata=self._metadata())

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
            await self._stub(peer.urls).SendSnapshot(
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
        for connection in list(self._inbound):
            connection.close()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    # -- receiving (called by InboundStream and PeerService) ----------------------------------

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
        if message.type is MessageType.APP:
            # Keep each entry's bytes for the WAL: protobuf's C code writes them again from
            # the parsed entry, far cheaper than kv's Python encoder (`wire_bytes`) would.
            remember = self.encodings.remember
            for entry, sent in zip(message.entries, wire.entries, strict=True):
                remember(entry.index, entry.term, sent.SerializeToString())
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
