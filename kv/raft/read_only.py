"""ReadIndex: linearizable reads without writing to the log (thesis §6.4).

A leader could answer a read from its state machine right away, but it might have been
deposed without knowing it, and then its answer could miss a write a newer leader committed.
Writing every read into the log would be safe but slow. ReadIndex is the middle way:

1. The leader notes its commit index as the request's *read index*. (A new leader first
   commits an entry of its own term, so that its commit index is at least that of any
   earlier leader; until then requests wait, see `kv.raft.raft.Raft`.)
2. It sends a round of heartbeats carrying the request's context and waits for a majority to
   acknowledge: then it was still the leader when the request arrived.
3. The application waits until it has applied up to the read index, then reads locally.

`ReadOnly` is step 2's bookkeeping. Requests wait in arrival order; an acknowledgement of a
later request also confirms every earlier one, since the heartbeat for the later one was sent
after the earlier request had arrived (etcd: ``raft/read_only.go``).

The alternative etcd offers, ``ReadOnlyLeaseBased``, skips step 2 and trusts that no other
leader can exist within an election timeout of the last heartbeat round (it relies on
bounded clock drift, and needs CheckQuorum).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kv.raft.messages import Message


class ReadOnlyOption(enum.Enum):
    SAFE = "safe"  # confirm leadership with a heartbeat round (the default)
    LEASE_BASED = "lease-based"  # trust the leader lease (needs check_quorum)


@dataclass(frozen=True, slots=True)
class ReadState:
    """A read the application may serve once it has applied up to ``index``."""

    index: int
    request_ctx: bytes


@dataclass(slots=True)
class ReadIndexStatus:
    """One pending request: the message, its read index, and who acknowledged it so far."""

    request: Message
    index: int
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    """Pending ReadIndex requests, keyed by their context, in arrival order."""

    def __init__(self, option: ReadOnlyOption) -> None:
        self.option = option
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, request: Message) -> None:
        """Remember ``request`` (its context is ``entries[0].data``) with read index ``index``."""
        context = request.entries[0].data
        if context in self.pending:
            return
        self.pending[context] = ReadIndexStatus(request=request, index=index)
        self.queue.append(context)

    def receive_ack(self, node: int, context: bytes) -> set[int]:
        """``node`` acknowledged the heartbeat for ``context``; returns all acks so far."""
        status = self.pending.get(context)
        if status is None:
            return set()
        status.acks.add(node)
        return status.acks

    # --8<-- [start:read-only-advance]
    def advance(self, context: bytes) -> list[ReadIndexStatus]:
        """The request ``context`` is confirmed: release it and every request before it."""
        if context not in self.pending:
            return []
        position = self.queue.index(context) + 1
        released = [self.pending.pop(ctx) for ctx in self.queue[:position]]
        del self.queue[:position]
        return released

    # --8<-- [end:read-only-advance]

    def last_pending_request_ctx(self) -> bytes:
        """The newest pending request's context (b"" if none): the next heartbeat carries it."""
        return self.queue[-1] if self.queue else b""
