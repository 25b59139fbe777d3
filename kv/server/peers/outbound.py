"""`OutboundStream`: the stream of Raft messages from this member to one peer (chapter 4).

Each peer gets one long-lived connection to its peer URL, in the frames of
`kv.server.peers.frames`, as etcd's ``rafthttp`` keeps one stream to each peer. What this
module keeps from etcd's stream writer:

* **A queue that never blocks.** `OutboundStream.push` appends and returns; a queue that is
  full (`QUEUE_SIZE`, etcd's ``streamBufSize``) refuses the message, and the transport drops
  it: Raft is built for a network that loses messages, and sends again.
* **One write for everything waiting.** A flush is scheduled for the next turn of the event
  loop, so every message queued in this turn (a Ready's appends, heartbeats and answers) goes
  out as one frame in one write, as etcd's writer flushes only once its queue is empty. While
  the connection's buffer is full (asyncio's ``pause_writing``) nothing is written and the
  queue fills instead: a slow peer costs its queue, not this member's memory.
* **Always connected.** The connection is opened when the peer becomes known and reopened
  `RECONNECT_SECONDS` after it breaks, even when there is nothing to send (a follower sends
  nothing to the other followers): etcd's strict reconfiguration checks ask how long each peer
  has been connected (`connected_since`).
* **Nothing written before the peer has taken the stream.** The peer answers the hello frame
  first; only then is the queue flushed. A peer that restarted is therefore written to only
  on a connection its new process accepted, and a message queued meanwhile (a vote, say) waits
  in the queue instead of being lost on a dead connection. (A stream over gRPC learnt that
  the connection was gone on its first write, and had to write that batch again.) While the
  peer cannot be reached, each failed attempt drops what is queued and reports it unreachable.

The transport (`kv.server.peers.transport.PeerTransport`) owns one stream per peer, runs its
`OutboundStream.run` task, and is told what happens through `StreamOwner`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, cast

from kv.raft import Message
from kv.server.peers.frames import LENGTH, FrameError, FrameReader

log = logging.getLogger(__name__)

#: Messages waiting for one peer before new ones are dropped (etcd: streamBufSize 4096).
QUEUE_SIZE = 4096
#: Pause before reconnecting to a peer that could not be reached.
RECONNECT_SECONDS = 0.1
#: How long opening a stream may take, connecting and the peer's answer to the hello (a peer
#: that is stopped, not dead, accepts the connection in its kernel and never answers).
OPEN_SECONDS = 1.0
#: The longest answer a peer may write (a reason for refusing the stream).
MAX_ANSWER = 4096


class StreamOwner(Protocol):
    """What a stream needs from the transport that owns it."""

    @property
    def hello(self) -> bytes:
        """The magic and hello frame that open every stream (`frames.Hello.encode`)."""
        ...

    def encode(self, member_id: int, messages: list[Message]) -> bytes:
        """A frame's payload for ``messages`` to ``member_id``; empty if none is to be sent."""
        ...

    def count_sent(self, member_id: int, size: int) -> None: ...

    def stream_broken(self, member_id: int, reason: str | None) -> None:
        """The stream to ``member_id`` could not be opened or broke; ``reason`` is what the
        peer said if it refused it."""
        ...


class _Refused(ConnectionError):
    """The peer answered the hello with a reason not to take the stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Link(asyncio.Protocol):
    """One connection of a stream: written by `OutboundStream`, read only for the answers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, resume: Callable[[], None]) -> None:
        #: The peer's answer to the hello: "" (taken), a reason, or None (closed first).
        self.answer: asyncio.Future[str | None] = loop.create_future()
        #: Set when the connection is gone: the reason the peer gave for closing it, if any.
        self.closed: asyncio.Future[str | None] = loop.create_future()
        self.writable = True
        self._resume = resume
        self._reader = FrameReader(MAX_ANSWER)
        self._connection: asyncio.Transport | None = None
        self._refusal: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio's, so no isinstance).
        self._connection = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            answers = self._reader.feed(data)
        except FrameError:
            self.close()
            return
        for payload in answers:
            text = bytes(payload).decode(errors="replace")
            if not self.answer.done():
                self.answer.set_result(text)
            else:
                self._refusal = text

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        self._resume()

    def connection_lost(self, exc: Exception | None) -> None:
        # The stream notices a moment later (`closed`), and may flush into this link before
        # it does: such writes go nowhere (uvloop raises on a closed transport; asyncio's
        # drops them) and Raft sends again on the next connection.
        self._connection = None
        if not self.answer.done():
            self.answer.set_result(None)
        if not self.closed.done():
            self.closed.set_result(self._refusal)

    def write(self, chunks: list[bytes]) -> None:
        if self._connection is not None:
            self._connection.writelines(chunks)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


class OutboundStream:
    """The queue of messages to one peer, and the connection they are written to."""

    def __init__(self, member_id: int, host: str, port: int, owner: StreamOwner) -> None:
        self.member_id = member_id
        self._address = (host, port)
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self._waiting: list[Message] = []
        self._link: _Link | None = None
        self._flush_scheduled = False
        # The reason a refusal was last logged for: not logged again ten times a second.
        self._refused_for: str | None = None
        #: Event loop time since when the stream has been open, or None (etcd: ActiveSince).
        self.connected_since: float | None = None

    # --8<-- [start:push]
    def push(self, message: Message) -> bool:
        """Queue ``message``; False if the queue is full. The flush comes next loop turn."""
        if len(self._waiting) >= QUEUE_SIZE:
            return False
        self._waiting.append(message)
        if not self._flush_scheduled and self._link is not None and self._link.writable:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        """Write everything waiting as one frame (if the connection takes writes now)."""
        self._flush_scheduled = False
        link = self._link
        if link is None or not link.writable or not self._waiting:
            return
        messages, self._waiting = self._waiting, []
        payload = self._owner.encode(self.member_id, messages)
        if payload:
            link.write([LENGTH.pack(len(payload)), payload])
            self._owner.count_sent(self.member_id, len(payload))

    # --8<-- [end:push]

    async def run(self) -> None:
        """Keep the stream open for as long as the peer is known (until cancelled)."""
        while True:
            reason: str | None = None
            queued = len(self._waiting)
            try:
                link = await self._open()
            except (OSError, TimeoutError) as error:
                # The peer cannot be reached: what waited for it is dropped (Raft sends again),
                # but not what was queued meanwhile, which the next attempt may deliver.
                del self._waiting[:queued]
                reason = error.reason if isinstance(error, _Refused) else None
            else:
                reason = await self._serve(link)
            if reason is not None and reason != self._refused_for:
                log.warning("%x refused this member's stream: %s", self.member_id, reason)
            self._refused_for = reason
            self._owner.stream_broken(self.member_id, reason)
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _open(self) -> _Link:
        """Connect, say hello, wait for the peer to take the stream.

        Raises:
            _Refused: the peer refused it.
            OSError: the peer could not be reached, or closed the connection first.
            TimeoutError: it took longer than `OPEN_SECONDS`.
        """
        link: _Link | None = None
        try:
            async with asyncio.timeout(OPEN_SECONDS):
                _, link = await self._loop.create_connection(
                    lambda: _Link(self._loop, self._flush), *self._address
                )
                link.write([self._owner.hello])
                answer = await link.answer
        except BaseException:
            if link is not None:
                link.close()
            raise
        if answer is None:
            raise ConnectionResetError("the peer closed the stream before answering")
        if answer:
            link.close()
            raise _Refused(answer)
        return link

    async def _serve(self, link: _Link) -> str | None:
        """Flush into ``link`` until it breaks; the reason the peer gave, if any."""
        self._link = link
        self.connected_since = self._loop.time()
        try:
            self._flush()
            return await link.closed
        finally:
            self._link = None
            self.connected_since = None
            link.close()
