"""What Raft nodes say to each other, and what they write down: messages, entries, state.

These are the shapes of etcd's ``raftpb`` (``kv/api/raftpb/raft.proto``) as plain frozen
dataclasses, so that the core never touches protobuf: the transport (a later chapter) converts
a `Message` to ``raftpb.Message`` at the wire, field by field, and the numbers of
`MessageType`, `EntryType` and `ConfChangeType` are etcd's so that conversion is a lookup.

The one place bytes matter inside the core is a configuration change: a `ConfChange` travels
through the log as the ``data`` of an entry of type `EntryType.CONF_CHANGE`, and the members
decode it when it is committed. `ConfChange.marshal` writes the protobuf encoding of
``raftpb.ConfChange`` by hand (five lines of varints), so the bytes in kv's log are the bytes
etcd would write, and the core still imports nothing.

Field names follow etcd's, in Python spelling (``log_term``, ``reject_hint``); ``from`` is a
keyword in Python, so a message's sender is ``from_``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

#: The node id that means "nobody": no leader known, no vote cast. Real ids are > 0.
NONE = 0


class MessageType(enum.IntEnum):
    """Every message a node steps; the numbers are etcd's ``raftpb.MessageType``.

    *Local* messages never cross the network: the node steps them into itself (a tick that
    ran out becomes `HUP` or `BEAT`, a client's proposal is `PROP`, a transport's failure
    report is `UNREACHABLE` or `SNAP_STATUS`).
    """

    HUP = 0  # local: start an election (Raft §5.2)
    BEAT = 1  # local: the leader's heartbeat timer fired
    PROP = 2  # a proposal: local, or forwarded by a follower to the leader
    APP = 3  # AppendEntries RPC (Figure 2)
    APP_RESP = 4
    VOTE = 5  # RequestVote RPC (Figure 2)
    VOTE_RESP = 6
    SNAP = 7  # InstallSnapshot RPC (Raft §7)
    HEARTBEAT = 8  # an AppendEntries with no entries; etcd gives it its own type
    HEARTBEAT_RESP = 9
    UNREACHABLE = 10  # local: the transport could not reach a peer
    SNAP_STATUS = 11  # local: the transport reports how sending a snapshot went
    CHECK_QUORUM = 12  # local: the leader's check-quorum timer fired
    TRANSFER_LEADER = 13  # local or forwarded: hand leadership to another node (thesis §3.10)
    TIMEOUT_NOW = 14  # leader transfer: "start an election now"
    READ_INDEX = 15  # a linearizable read (thesis §6.4): local, or forwarded to the leader
    READ_INDEX_RESP = 16
    PRE_VOTE = 17  # PreVote (thesis §9.6): "would you vote for me?"
    PRE_VOTE_RESP = 18

    def __str__(self) -> str:
        """etcd's name: ``MsgApp``, ``MsgPreVoteResp``, ..."""
        return "Msg" + "".join(part.capitalize() for part in self.name.split("_"))


LOCAL_MESSAGES = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.UNREACHABLE,
        MessageType.SNAP_STATUS,
        MessageType.CHECK_QUORUM,
    }
)
"""Messages a node only ever sends to itself; one arriving from the network is refused."""

RESPONSE_MESSAGES = frozenset(
    {
        MessageType.APP_RESP,
        MessageType.VOTE_RESP,
        MessageType.HEARTBEAT_RESP,
        MessageType.UNREACHABLE,
        MessageType.PRE_VOTE_RESP,
    }
)
"""Answers to something the node asked; one from a node it does not know is dropped."""


def vote_response_type(request: MessageType) -> MessageType:
    """The answer to a vote request: `VOTE_RESP` for `VOTE`, `PRE_VOTE_RESP` for `PRE_VOTE`."""
    if request is MessageType.VOTE:
        return MessageType.VOTE_RESP
    if request is MessageType.PRE_VOTE:
        return MessageType.PRE_VOTE_RESP
    raise ValueError(f"not a vote request: {request}")


class EntryType(enum.IntEnum):
    """What an entry's ``data`` holds; etcd's ``raftpb.EntryType`` (V2 changes not used)."""

    NORMAL = 0  # a client's request, or empty: the entry a new leader appends
    CONF_CHANGE = 1  # a marshalled `ConfChange`


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the replicated log (Raft §5.3): a command and the term it was created in.

    Index and term together identify an entry across all logs: by the Log Matching Property
    (Figure 3), two logs that hold an entry with the same index and term are identical up to
    and including it.
    """

    term: int = 0
    index: int = 0
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """An estimate of the entry's encoded size, for the per-message byte budget."""
        return len(self.data) + 16

    def __deepcopy__(self, memo: dict[int, object]) -> Entry:
        return self  # immutable: shared by a deep copy (`kv.sim.Cluster.copy`'s keyframes)


# --8<-- [start:hard-state]
@dataclass(frozen=True, slots=True)
class HardState:
    """What a node must persist before it answers anyone (Figure 2, "Persistent state").

    ``term`` is currentTerm and ``vote`` is votedFor. etcd also records ``commit``, so that a
    restarted node knows how far it may apply without asking the leader first.
    """

    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self == EMPTY_HARD_STATE


# --8<-- [end:hard-state]


EMPTY_HARD_STATE = HardState()


@dataclass(frozen=True, slots=True)
class ConfState:
    """A cluster configuration: who votes, and who only learns.

    Learners receive the log but are not counted for elections or commitment (etcd's
    ``raftpb.ConfState``; kv does single-member changes only, so there is no joint half).
    """

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "voters", tuple(sorted(self.voters)))
        object.__setattr__(self, "learners", tuple(sorted(self.learners)))


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    """Where a snapshot stands: the last entry it covers, and the configuration at that point."""

    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine as of ``metadata.index`` (Raft §7): it replaces the log up to there."""

    data: bytes = b""
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    def is_empty(self) -> bool:
        return self.metadata.index == 0


class ConfChangeType(enum.IntEnum):
    """What a `ConfChange` does; etcd's ``raftpb.ConfChangeType``."""

    ADD_NODE = 0  # add a voter, or promote a learner to voter
    REMOVE_NODE = 1
    UPDATE_NODE = 2  # the application's business (new URLs); Raft ignores it
    ADD_LEARNER_NODE = 3


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A change of one member (Raft §6, thesis §4.1: one server at a time).

    It is proposed like any command, travels as the data of an `EntryType.CONF_CHANGE` entry,
    and takes effect when the application applies it (`kv.raft.node.RawNode.apply_conf_change`).
    ``id`` and ``context`` belong to the application (etcd puts its member record in context).
    """

    type: ConfChangeType
    node_id: int
    context: bytes = b""
    id: int = 0

    def marshal(self) -> bytes:
        """The protobuf encoding of ``raftpb.ConfChange`` (proto3: zero fields omitted)."""
        out = bytearray()
        for number, value in ((1, self.id), (2, int(self.type)), (3, self.node_id)):
            if value:
                out += _varint(number << 3) + _varint(value)
        if self.context:
            out += _varint(4 << 3 | 2) + _varint(len(self.context)) + self.context
        return bytes(out)

    @classmethod
    def unmarshal(cls, data: bytes) -> ConfChange:
        """Decode what `marshal` (or protobuf's ``raftpb.ConfChange``) wrote."""
        values: dict[int, int] = {}
        context = b""
        position = 0
        while position < len(data):
            key, position = _read_varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                values[number], position = _read_varint(data, position)
            elif wire_type == 2:
                length, position = _read_varint(data, position)
                if number == 4:
                    context = data[position : position + length]
                position += length
            else:
                raise ValueError(f"unexpected wire type {wire_type} in a ConfChange")
        return cls(
            type=ConfChangeType(values.get(2, 0)),
            node_id=values.get(3, 0),
            context=context,
            id=values.get(1, 0),
        )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint in a ConfChange")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


@dataclass(frozen=True, slots=True)
class Message:
    """One message between nodes (or from a node to itself); etcd's ``raftpb.Message``.

    The fields mean different things for different types, as in etcd:

    * `MessageType.APP`: ``index``/``log_term`` identify the entry just before ``entries``
      (prevLogIndex/prevLogTerm of Figure 2), ``commit`` is the leader's commit index.
    * `MessageType.APP_RESP`: ``index`` is the follower's last matching index; on a reject,
      ``index`` echoes the probe and ``reject_hint``/``log_term`` say where the follower
      guesses the logs may match (see `kv.raft.log.RaftLog.find_conflict_by_term`).
    * `MessageType.VOTE`/`MessageType.PRE_VOTE`: ``index``/``log_term`` are the candidate's
      last entry (lastLogIndex/lastLogTerm), ``term`` the term it campaigns for.
    * `MessageType.HEARTBEAT`: ``commit`` is min(the follower's match, the leader's commit);
      ``context`` carries a ReadIndex request's id back and forth.
    * `MessageType.READ_INDEX`: ``entries[0].data`` is the request's context.
    """

    type: MessageType
    to: int = NONE
    from_: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""
