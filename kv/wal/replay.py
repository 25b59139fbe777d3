"""Reading the log back: the records of the segments replayed into `WalContents` (chapter 2).

Reading back
------------
`WAL.open` is etcd's ``Open`` + ``ReadAll``: it finds the segment that holds the given snapshot's
index, reads from there to the end, and returns the metadata, the last hard state and the
entries after the snapshot. An entry whose index is already in the list replaces it and every
entry after it: Raft overwrote a conflicting suffix (Raft §5.3), and the later record wins.

A crash can tear the last append. `WAL.open` truncates a torn tail of the *last* segment (it was
never fsynced, so never acknowledged) with a warning. Anything else that is invalid -- a CRC
mismatch with good records after it, a torn record in an earlier segment, a missing segment --
means data that was durable has been damaged: `WalCorruptError` names the file and the byte
offset, and nothing on disk is changed. `kv.wal.record` explains how the two are told apart.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from kv.api.raftpb import raft_pb2 as raftpb
from kv.api.walpb import record_pb2 as walpb
from kv.wal.errors import WalCorruptError, WalSnapshotMismatchError
from kv.wal.record import Decoded, Frame, Outcome, RecordType, decode_frames
from kv.wal.segments import Segment

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class WalContents:
    """What `WAL.open` read back: etcd's ``ReadAll`` results."""

    metadata: bytes
    state: raftpb.HardState  # the last hard state saved; all zeros if none
    entries: tuple[raftpb.Entry, ...]  # the entries after the snapshot, in index order


@dataclass(slots=True)
class Replay:
    """The records of the segments read, replayed in order (etcd: ``ReadAll``'s loop)."""

    start: walpb.Snapshot
    metadata: bytes | None = None
    state: raftpb.HardState = field(default_factory=raftpb.HardState)
    entries: list[raftpb.Entry] = field(default_factory=list)
    last_index: int = 0
    snapshot_found: bool = False

    def apply(self, frame: Frame, path: Path) -> None:
        data = frame.record.data
        match frame.record.type:  # an int: `Frame.type` would make an enum of every record
            case RecordType.ENTRY:
                self._entry(_parse(raftpb.Entry(), data, frame, path), frame, path)
            case RecordType.STATE:
                self.state = _parse(raftpb.HardState(), data, frame, path)
            case RecordType.METADATA:
                if self.metadata is not None and self.metadata != data:
                    raise WalCorruptError(path, frame.offset, "conflicting metadata found")
                self.metadata = data
            case RecordType.SNAPSHOT:
                self._snapshot(_parse(walpb.Snapshot(), data, frame, path), frame, path)
            case RecordType.CRC:
                pass  # the decoder checked the chain

    def _entry(self, entry: raftpb.Entry, frame: Frame, path: Path) -> None:
        if entry.Index > self.start.index:
            # entries[k] holds index start.index + 1 + k. An entry at an index already held
            # replaces it and everything after it: Raft overwrote a conflicting suffix.
            position = entry.Index - self.start.index - 1
            if position > len(self.entries):
                last = self.start.index + len(self.entries)
                reason = f"entry {entry.Index} leaves a gap after entry {last}"
                raise WalCorruptError(path, frame.offset, reason)
            del self.entries[position:]
            self.entries.append(entry)
        self.last_index = entry.Index

    def _snapshot(self, snapshot: walpb.Snapshot, frame: Frame, path: Path) -> None:
        if snapshot.index != self.start.index:
            return
        if snapshot.term != self.start.term:
            raise WalSnapshotMismatchError(
                f"wal: snapshot mismatch in {path} at offset {frame.offset}: index "
                f"{snapshot.index} has term {snapshot.term}, not {self.start.term}"
            )
        self.snapshot_found = True


def _parse(message: M, data: bytes, frame: Frame, path: Path) -> M:
    """Parse a record's data into ``message``, accepting only bytes kv could have written.

    The CRC covers a record's data but not its type (as in etcd), so a damaged type byte can
    make an entry's bytes pass for a hard state. Refusing unknown fields and non-canonical
    encodings catches most such cases (not all: an entry without data reads as a valid hard
    state).
    """
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise WalCorruptError(path, frame.offset, f"unparseable {frame.type.name}") from exc
    message.DiscardUnknownFields()
    if message.SerializeToString() != data:
        raise WalCorruptError(path, frame.offset, f"{frame.type.name} data is not canonical")
    return message


def decode_segment(segment: Segment, prev_crc: int | None, *, last: bool) -> Decoded:
    """Decode one segment; refuse corruption, and a torn tail anywhere but the last segment."""
    decoded = decode_frames(segment.path.read_bytes(), prev_crc)
    if decoded.outcome is Outcome.CORRUPT:
        raise WalCorruptError(segment.path, decoded.end, decoded.reason)
    if decoded.outcome is Outcome.TORN and not last:
        # A segment is synced whole before the next one is created: it cannot be torn.
        reason = f"{decoded.reason} (a torn record in a segment that is not the last)"
        raise WalCorruptError(segment.path, decoded.end, reason)
    if not decoded.frames or decoded.frames[0].type is not RecordType.CRC:
        raise WalCorruptError(segment.path, 0, "the segment does not start with a CRC record")
    return decoded


def truncate_torn_tail(path: Path, decoded: Decoded) -> None:
    """Cut the last segment back to its last whole record, durably (etcd: ``Repair``)."""
    size = path.stat().st_size
    logger.warning(
        "wal: %s: torn tail at offset %d (%s); truncating %d bytes",
        path,
        decoded.end,
        decoded.reason,
        size - decoded.end,
    )
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, decoded.end)
        os.fsync(fd)  # a full fsync: the new size is the point
    finally:
        os.close(fd)


__all__ = ["Replay", "WalContents", "decode_segment", "truncate_torn_tail"]
