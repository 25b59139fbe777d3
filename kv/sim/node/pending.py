"""What a simulated member's server side keeps for its clients while Raft works (chapter 3).

etcd's server remembers each proposal it made by request id until it is applied
(``wait.Wait``) and each linearizable read until ReadIndex confirmed an index and the state
machine reached it. A `kv.sim.node.SimNode` keeps the same, in `PendingRequests`: volatile,
like the rest of its memory, so a crash forgets it and the clients time out. What it hands
back is an `Answer`. Moved out of `kv.sim.node.node`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import Message as ProtoMessage

from kv.server.errors import EtcdError

#: What the state machine answers a request with: a response, or etcd's error.
Result = ProtoMessage | EtcdError


@dataclass(frozen=True, slots=True)
class Answer:
    """The member's answer to a client request (``request_id``), ready to go back."""

    request_id: int
    result: Result


@dataclass(slots=True)
class PendingRead:
    request_id: int
    #: None: a ReadIndex round that only confirms leadership (`SimNode.confirm_leadership`).
    key: bytes | None
    asked_at: int
    #: The read index, once ReadIndex confirmed it (the read waits to apply up to it).
    index: int | None = None


@dataclass(slots=True)
class PendingRequests:
    """A member's volatile server state: lost in a crash with the rest of its memory."""

    #: Proposals this member made for clients, by request id, until applied.
    writes: set[int] = field(default_factory=set)
    #: Membership changes this member proposed for the operator, by request id.
    conf_changes: set[int] = field(default_factory=set)
    #: Linearizable reads, by ReadIndex context, until served.
    reads: dict[bytes, PendingRead] = field(default_factory=dict)
    #: Request ids issued so far in this incarnation.
    issued: int = 0


def request_context(request_id: int) -> bytes:
    """The ReadIndex context of a read: its request id, as etcd uses it (8 bytes)."""
    return request_id.to_bytes(8, "big")
