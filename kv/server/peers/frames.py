"""The peer stream's wire format: length-prefixed frames over one TCP connection (chapter 4).

A member sends each peer its Raft messages over one plain connection to the peer URL, as
etcd's ``rafthttp`` streams them over one long-lived HTTP response: no gRPC call, no HTTP/2
framing, nothing per message but the bytes of the message. The connection carries:

* from the sender: `MAGIC`, which tells the peer URL's front (`kv.server.front`) that this
  connection is a Raft stream and not gRPC or HTTP; then a hello frame (`Hello`: the sender's
  member id and cluster id, what etcd sends as its ``X-Server-From`` and ``X-Etcd-Cluster-ID``
  headers); then message frames, each an ``kvpeerpb.MessageBatch`` holding every message that
  was waiting when it was written;
* from the receiver: one answer frame, empty if it takes the stream, else the reason it
  refuses it (etcd's text, e.g. the cluster id mismatch) before it closes the connection. A
  stream refused later (its sender was removed from the cluster meanwhile) gets a second
  frame with the reason, then the close.

A frame is a 4-byte big-endian length and that many bytes. `FrameReader` cuts a byte stream
into frames as it arrives, copying a frame only when it arrived in pieces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: The first bytes of a Raft stream: what the front routes on, and a version to change
#: should the format ever change.
MAGIC = b"KVRAFT1\n"
#: A frame's length prefix.
LENGTH = struct.Struct(">I")
#: The hello frame's payload: the sender's member id, then its cluster id.
HELLO = struct.Struct(">QQ")
#: The largest frame a reader takes: what gRPC allowed a peer message before (a batch of
#: appends is bounded by Raft's max-size-per-msg and the request limit, far below it).
MAX_FRAME = 2**31 - 1


class FrameError(ValueError):
    """The bytes are not a well-formed frame stream: the connection must be dropped."""


@dataclass(frozen=True, slots=True)
class Hello:
    """Who opens a stream: checked by the receiver before any message is accepted."""

    member_id: int
    cluster_id: int

    def encode(self) -> bytes:
        """`MAGIC` and this hello as a frame: what a sender writes first."""
        return MAGIC + frame(HELLO.pack(self.member_id, self.cluster_id))

    @classmethod
    def decode(cls, payload: bytes | memoryview) -> Hello:
        """The hello in a frame's payload.

        Raises:
            FrameError: the payload is not a hello.
        """
        if len(payload) != HELLO.size:
            raise FrameError(f"a hello frame has {HELLO.size} bytes, not {len(payload)}")
        member_id, cluster_id = HELLO.unpack(payload)
        return cls(member_id, cluster_id)


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    return LENGTH.pack(len(payload)) + payload


class FrameReader:
    """Cuts the bytes a connection receives into frames, in order.

    A frame that arrived whole inside one read is handed out as a `memoryview` of that read
    (no copy: protobuf parses from it directly); only the bytes of a frame split across reads
    are kept, and copied once it is complete.
    """

    __slots__ = ("_max_frame", "_partial", "_wanted")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._partial = bytearray()  # the start of a frame that has not wholly arrived
        self._wanted = 0  # how long _partial must grow before it is worth looking at again

    def feed(self, data: bytes) -> list[memoryview]:
        """The frames completed by ``data`` (their payloads, without the length).

        Raises:
            FrameError: a frame claims more than ``max_frame`` bytes.
        """
        partial = self._partial
        if partial:
            partial += data
            if len(partial) < self._wanted:
                return []  # a large frame still arriving: do not copy it on every read
            view = memoryview(bytes(partial))
            partial.clear()
        else:
            view = memoryview(data)
        frames: list[memoryview] = []
        start, size = 0, len(view)
        while size - start >= LENGTH.size:
            (length,) = LENGTH.unpack_from(view, start)
            if length > self._max_frame:
                raise FrameError(f"a frame of {length} bytes is over the limit")
            end = start + LENGTH.size + length
            if end > size:
                self._wanted = end - start
                break
            frames.append(view[start + LENGTH.size : end])
            start = end
        else:
            self._wanted = LENGTH.size
        if start < size:
            partial += view[start:]
        return frames
