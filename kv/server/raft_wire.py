"""The Raft core's values in etcd's wire format, and back (chapter 4).

The core (`kv.raft`) speaks frozen dataclasses; the disk (the chapter 2 WAL) and the network
(`kv.server.peers.transport`) speak etcd's ``raftpb`` protobuf messages. These functions translate
one to the other, field by field, and nothing else: the numbers of message and entry types are
etcd's in both, so a conversion is a copy. On the sending side's hot path, entries and messages
skip the protobuf objects and are written straight to their bytes (`kv.server.wire_bytes`);
these functions serve the rest: what is received or read back, the hard state, a MsgSnap.
"""

from __future__ import annotations

from kv.api.raftpb import raft_pb2 as raftpb
from kv.raft import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)

# The enums by number: a lookup costs a tenth of calling the enum, and a number the enum does
# not have is refused all the same (KeyError instead of ValueError).
_MESSAGE_TYPES = {kind.value: kind for kind in MessageType}
_ENTRY_TYPES = {kind.value: kind for kind in EntryType}


def entry_to_pb(entry: Entry) -> raftpb.Entry:
    return raftpb.Entry(Term=entry.term, Index=entry.index, Type=int(entry.type), Data=entry.data)  # type: ignore[arg-type]


def entry_from_pb(entry: raftpb.Entry) -> Entry:
    return Entry(term=entry.Term, index=entry.Index, type=_ENTRY_TYPES[entry.Type], data=entry.Data)


def hard_state_to_pb(state: HardState) -> raftpb.HardState:
    return raftpb.HardState(term=state.term, vote=state.vote, commit=state.commit)


def hard_state_from_pb(state: raftpb.HardState) -> HardState:
    return HardState(term=state.term, vote=state.vote, commit=state.commit)


def conf_state_to_pb(state: ConfState) -> raftpb.ConfState:
    return raftpb.ConfState(voters=state.voters, learners=state.learners)


def conf_state_from_pb(state: raftpb.ConfState) -> ConfState:
    return ConfState(voters=tuple(state.voters), learners=tuple(state.learners))


def snapshot_to_pb(snapshot: Snapshot) -> raftpb.Snapshot:
    metadata = snapshot.metadata
    return raftpb.Snapshot(
        data=snapshot.data,
        metadata=raftpb.SnapshotMetadata(
            conf_state=conf_state_to_pb(metadata.conf_state),
            index=metadata.index,
            term=metadata.term,
        ),
    )


def snapshot_from_pb(snapshot: raftpb.Snapshot) -> Snapshot:
    metadata = snapshot.metadata
    return Snapshot(
        data=snapshot.data,
        metadata=SnapshotMetadata(
            conf_state=conf_state_from_pb(metadata.conf_state),
            index=metadata.index,
            term=metadata.term,
        ),
    )


def message_to_pb(message: Message) -> raftpb.Message:
    wire = raftpb.Message(
        type=int(message.type),  # type: ignore[arg-type]
        to=message.to,
        term=message.term,
        logTerm=message.log_term,
        index=message.index,
        entries=[entry_to_pb(entry) for entry in message.entries],
        commit=message.commit,
        reject=message.reject,
        rejectHint=message.reject_hint,
        context=message.context,
    )
    # "from" is a Python keyword: protobuf's constructor cannot take it by name.
    setattr(wire, "from", message.from_)
    if message.snapshot is not None:
        wire.snapshot.CopyFrom(snapshot_to_pb(message.snapshot))
    return wire


def message_from_pb(wire: raftpb.Message) -> Message:
    entries = wire.entries
    return Message(
        type=_MESSAGE_TYPES[wire.type],
        to=wire.to,
        from_=getattr(wire, "from"),
        term=wire.term,
        log_term=wire.logTerm,
        index=wire.index,
        entries=tuple(map(entry_from_pb, entries)) if entries else (),
        commit=wire.commit,
        snapshot=snapshot_from_pb(wire.snapshot) if wire.HasField("snapshot") else None,
        reject=wire.reject,
        reject_hint=wire.rejectHint,
        context=wire.context,
    )
