"""The Raft core's messages and entries straight to etcd's wire bytes, each entry once (chapter 4).

`kv.server.raft_wire` translates the core's dataclasses into ``raftpb`` protobuf objects,
which the disk and the network then serialize. On the hot path that costs twice: building a
protobuf object field by field is slow in Python, and the same entry was built and
serialized three times on a leader of three (once for its WAL, once in each follower's
MsgApp). This module writes the bytes directly instead, byte for byte what protobuf writes
(proto3: zero fields left out, fields in number order), and keeps each entry's encoding in
`EntryEncodings` so that the WAL record and every MsgApp carrying it share one. A protobuf
message's encoding is the concatenation of its fields' encodings, so a MsgApp's repeated
``entries`` field is assembled from entries already encoded; a ``MessageBatch`` from
messages already encoded the same way.

A follower does the same with what it receives: protobuf's C code, which parsed a MsgApp's
entries, writes each one again (far cheaper than this module would), and
`EntryEncodings.remember` keeps those bytes for its WAL record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from kv.raft import Entry, Message
from kv.server import raft_wire

#: How many entries' encodings, and how many of their bytes, `EntryEncodings` keeps in each of
#: its two generations: enough for the entries between a proposal and its last follower's
#: MsgApp, not a copy of the log (a generation of large entries fills up by bytes first).
ENCODINGS_KEPT = 1024
ENCODED_BYTES_KEPT = 16 * 1024 * 1024

#: The one-byte varints, made once: most of a message's numbers are small.
_SMALL = [bytes((value,)) for value in range(0x80)]


def varint(value: int) -> bytes:
    """``value`` as a protobuf base-128 varint (unsigned)."""
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def entry_bytes(entry: Entry) -> bytes:
    """``raftpb.Entry``'s encoding of ``entry``: Type (1), Term (2), Index (3), Data (4)."""
    out = bytearray()
    if entry.type:
        out += b"\x08" + varint(entry.type)
    if entry.term:
        out += b"\x10" + varint(entry.term)
    if entry.index:
        out += b"\x18" + varint(entry.index)
    if entry.data:
        out += b"\x22" + varint(len(entry.data)) + entry.data
    return bytes(out)


class EncodedEntry(NamedTuple):
    """An entry in its wire form, as `kv.wal.WAL.save` takes an entry (`kv.wal.LogEntry`)."""

    Index: int  # raftpb.Entry's spelling: what the WAL reads of an entry
    encoded: bytes

    def SerializeToString(self) -> bytes:  # protobuf's name: the WAL calls it
        return self.encoded


class EntryEncodings:
    """Each log entry's encoding, made once and shared by the WAL and every MsgApp.

    Keyed by (index, term): by the Log Matching Property (Raft §5.3, Figure 3) an entry is
    identified by its index and term, so two entries with the same pair are the same entry and
    may share an encoding. Entries without an index (a proposal on its way to the leader, a
    ReadIndex context) are encoded each time. The newest are kept in two generations, the
    older dropped whole when the newer holds `ENCODINGS_KEPT` entries or `ENCODED_BYTES_KEPT`
    bytes.
    """

    __slots__ = ("_newer", "_newer_bytes", "_older")

    def __init__(self) -> None:
        self._newer: dict[tuple[int, int], bytes] = {}
        self._newer_bytes = 0
        self._older: dict[tuple[int, int], bytes] = {}

    def encode(self, entry: Entry) -> bytes:
        """``entry``'s encoding: the one kept, or a new one (then kept)."""
        if not entry.index:
            return entry_bytes(entry)
        key = (entry.index, entry.term)
        encoded = self._newer.get(key)
        if encoded is None:
            encoded = self._older.get(key)
            if encoded is None:
                encoded = entry_bytes(entry)
            self._keep(key, encoded)
        return encoded

    def remember(self, index: int, term: int, encoded: bytes) -> None:
        """Keep ``encoded`` as the encoding of the entry at ``index`` in ``term`` (a follower
        keeps each entry of a MsgApp, as protobuf writes it again, for its WAL)."""
        if index:
            self._keep((index, term), encoded)

    def for_wal(self, entries: Sequence[Entry]) -> list[EncodedEntry]:
        """``entries`` as `kv.wal.WAL.save` takes them, encoded once."""
        encode = self.encode
        return [EncodedEntry(entry.index, encode(entry)) for entry in entries]

    def _keep(self, key: tuple[int, int], encoded: bytes) -> None:
        if len(self._newer) >= ENCODINGS_KEPT or self._newer_bytes >= ENCODED_BYTES_KEPT:
            self._older, self._newer, self._newer_bytes = self._newer, {}, 0
        self._newer[key] = encoded
        self._newer_bytes += len(encoded)


def message_bytes(message: Message, entries: EntryEncodings) -> bytes:
    """``raftpb.Message``'s encoding of ``message``, its entries taken from ``entries``."""
    out = bytearray()
    if message.type:
        out += b"\x08" + varint(message.type)
    if message.to:
        out += b"\x10" + varint(message.to)
    if message.from_:
        out += b"\x18" + varint(message.from_)
    if message.term:
        out += b"\x20" + varint(message.term)
    if message.log_term:
        out += b"\x28" + varint(message.log_term)
    if message.index:
        out += b"\x30" + varint(message.index)
    for entry in message.entries:
        encoded = entries.encode(entry)
        out += b"\x3a" + varint(len(encoded)) + encoded
    if message.commit:
        out += b"\x40" + varint(message.commit)
    if message.snapshot is not None:  # a MsgSnap goes by gRPC; written here for completeness
        snapshot = raft_wire.snapshot_to_pb(message.snapshot).SerializeToString()
        out += b"\x4a" + varint(len(snapshot)) + snapshot
    if message.reject:
        out += b"\x50\x01"
    if message.reject_hint:
        out += b"\x58" + varint(message.reject_hint)
    if message.context:
        out += b"\x62" + varint(len(message.context)) + message.context
    return bytes(out)


def batch_bytes(messages: Sequence[Message], entries: EntryEncodings) -> bytes:
    """``kvpeerpb.MessageBatch``'s encoding of ``messages`` (field 1, repeated)."""
    out = bytearray()
    for message in messages:
        encoded = message_bytes(message, entries)
        out += b"\x0a" + varint(len(encoded)) + encoded
    return bytes(out)
