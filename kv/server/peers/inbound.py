"""`InboundStream`: the receiving end of a peer's Raft stream (chapter 4).

A peer's messages arrive over a connection to our peer URL in the frames of
`kv.server.peers.frames`. The peer URL's front (`kv.server.front`) hands a connection that
opens with `frames.MAGIC` to a new `InboundStream`; this protocol then reads it as it arrives,
with no task of its own: each read is cut into frames, each frame parsed into a
``MessageBatch`` in one call, each message handed to the transport (`PeerTransport.receive`),
which hands it to Raft.

Nothing is taken before the hello frame has been checked (`PeerTransport.accept`): a member of
another cluster, or one removed from ours, is refused with etcd's text, as etcd's
``rafthttp`` answers such a stream with 412 or 410. A stream whose sender is removed while it
is open is refused the same way at its next message.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import cast

from google.protobuf.message import DecodeError

from kv.api.peerpb import peer_pb2
from kv.server.peers.frames import MAGIC, FrameError, FrameReader, Hello, frame
from kv.server.peers.transport import PeerTransport

log = logging.getLogger(__name__)


class _Stage(enum.Enum):
    """Where a stream is in its life."""

    MAGIC = "magic"  # waiting for the first bytes (a test may connect without a front)
    HELLO = "hello"  # waiting for the sender to say who it is
    OPEN = "open"  # taking messages
    CLOSED = "closed"


class InboundStream(asyncio.Protocol):
    """One peer's stream of Raft messages to this member."""

    def __init__(self, transport: PeerTransport) -> None:
        self._peers = transport
        self._connection: asyncio.Transport | None = None
        self._stage = _Stage.MAGIC
        self._start = bytearray()  # the magic, while it arrives
        self._reader = FrameReader()
        self._sender = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio's, so no isinstance).
        self._connection = cast(asyncio.Transport, transport)
        self._peers.track_inbound(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stage = _Stage.CLOSED
        if self._connection is not None:
            self._peers.untrack_inbound(self._connection)

    def data_received(self, data: bytes) -> None:
        if self._stage is _Stage.MAGIC:
            self._start += data
            if len(self._start) < len(MAGIC):
                return
            if not self._start.startswith(MAGIC):
                self._close("not a Raft stream")
                return
            data = bytes(self._start[len(MAGIC) :])
            self._stage = _Stage.HELLO
        try:
            for payload in self._reader.feed(data):
                if self._stage is _Stage.OPEN:
                    self._take(payload)
                elif self._stage is _Stage.HELLO:
                    self._greet(Hello.decode(payload))
                else:
                    return
        except PermissionError as error:
            log.warning("refused a peer stream: %s", error)
            self._answer(str(error))
            self._close(None)
        except (FrameError, DecodeError) as error:
            self._close(f"a malformed peer stream: {error}")

    def _greet(self, hello: Hello) -> None:
        """Check the sender's hello (raises PermissionError); take the stream."""
        self._peers.accept(hello)
        self._sender = hello.member_id
        self._stage = _Stage.OPEN
        self._answer("")

    def _take(self, payload: memoryview) -> None:
        """Hand one frame's messages to the transport, in order."""
        # protobuf parses any buffer; its stubs only say bytes (a copy would be wasted)
        batch = peer_pb2.MessageBatch.FromString(cast(bytes, payload))
        self._peers.count_received(self._sender, len(payload))
        receive = self._peers.receive
        for wire in batch.messages:
            receive(wire)

    def _answer(self, reason: str) -> None:
        if self._connection is not None:
            self._connection.write(frame(reason.encode()))

    def _close(self, why: str | None) -> None:
        if why is not None:
            log.warning("closed a peer connection: %s", why)
        self._stage = _Stage.CLOSED
        if self._connection is not None:
            self._connection.close()  # what was written is sent first
