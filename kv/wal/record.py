"""WAL records and how they are framed on disk (chapter 2). Pure: bytes in, bytes out.

Every record of the write-ahead log is a ``walpb.Record``: a type, a CRC and the data (a
protobuf-encoded ``raftpb.Entry``, ``raftpb.HardState``, ``walpb.Snapshot``, or the
caller's metadata). We frame records exactly as etcd does (``wal/encoder.go``,
``wal/decoder.go``)::

    +-------------------------+---------------------------+-------------+
    | length word: uint64, LE | the encoded walpb.Record  | 0-7 zeros   |
    +-------------------------+---------------------------+-------------+

The low 56 bits of the length word count the record's bytes. The record is padded with zeros
to a multiple of 8 bytes, so every length word starts 8-byte aligned and is never split across
two disk sectors: a crash cannot leave half of a length word ("force 8 byte alignment so length
never gets a torn write", etcd's encoder says). When there is padding, the top byte of the
length word is ``0x80 | padding``; otherwise it is zero.

The CRC is a chain. Each record's ``crc`` is the CRC-32C (Castagnoli) of its data, continued
from the previous record's ``crc``: a record that is missing, repeated, reordered or spliced in
from another log breaks the chain, not only one whose bytes changed. A segment file starts with
a CRC record that carries the chain's value at the end of the previous segment (0 for the first
segment) and no data: the chain runs unbroken through every file, and a reader that starts at a
later segment picks it up from there.

Theory of operation of the decoder
----------------------------------
`decode_frames` reads frames from the start of a segment's bytes and stops at the first frame
that is not valid. It tells three endings apart, and reports the byte offset where the valid
records end:

``CLEAN``
    The bytes end exactly after a valid frame.
``TORN``
    The last write did not reach the disk whole. A crash during an append leaves a file cut
    short (the final frame is incomplete), or, where a filesystem extended the file before the
    data landed, zeros. Either way the damage is at the very end: a frame fails (it is
    incomplete, all zeros, unparseable, or fails its CRC) and **nothing valid follows it**.
    Those records were never fsynced, so no one was told they were durable; the WAL may
    truncate them.
``CORRUPT``
    A frame fails and a valid frame follows it: data that was once written whole has changed
    (a flipped bit, a bad sector, a stray write). Truncating there would throw away records
    that may have been acknowledged, so the WAL refuses to open instead.

"A valid frame follows" is checked by scanning every 8-byte-aligned offset after the failing
frame's length word for a well-formed frame (a length word we could have written, the whole
frame present, zero padding, a record in canonical encoding with a known type). The scan does
not trust the failing frame's length word, which may be the very thing that was damaged. It
cannot check the CRC of what it finds (the chain is broken at the failing frame), so it is a
structural test, and it errs on the side of refusing: if the pages of one append reached the
disk out of order (a page of zeros, then a written page), kv refuses to open where etcd would
truncate. An operator can then look; a wrong truncation could not be undone.

etcd's decoder decides differently. It preallocates segment files with zeros, so a zero length
word means "end of the written part" to it; and it calls a failing frame torn only if one of
its 512-byte sectors is all zeros (``isTornEntry``), whatever follows, and anything else a CRC
mismatch. kv does not preallocate (see `kv.wal.wal`), so the end of the file is the end of the
log, and what follows a failing frame is the better witness.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple

import crc32c
from google.protobuf.message import DecodeError

from kv.api.walpb import record_pb2 as walpb

FRAME_SIZE_BYTES = 8  # the length word (etcd: frameSizeBytes)
ALIGNMENT = 8
# Raft messages are limited to about 1 MiB in etcd, so an entry over 10 MiB can only be garbage
# (etcd: maxWALEntrySizeLimit, wal/decoder.go). We refuse to write one, too.
MAX_RECORD_BYTES = 10 * 1024 * 1024
PADDED_FLAG = 0x80
_LENGTH_WORD = struct.Struct("<Q")


class RecordType(IntEnum):
    """What a record's data holds (etcd: ``metadataType`` ... ``snapshotType``, wal/wal.go)."""

    METADATA = 1  # the caller's bytes, at the head of every segment
    ENTRY = 2  # a raftpb.Entry
    STATE = 3  # a raftpb.HardState
    CRC = 4  # the CRC chain's value at the end of the previous segment; no data
    SNAPSHOT = 5  # a walpb.Snapshot: the log position of a snapshot


_RECORD_TYPES = frozenset(RecordType)


def chain_crc(data: bytes, prev_crc: int) -> int:
    """CRC-32C of ``data``, continued from ``prev_crc`` (etcd: ``crc.New(prevCrc, crcTable)``)."""
    return crc32c.crc32c(data, value=prev_crc)


def encode_frame_size(record_bytes: int) -> tuple[int, int]:
    """The length word for a record of ``record_bytes`` bytes, and the padding after it.

    >>> encode_frame_size(8)
    (8, 0)
    >>> hex(encode_frame_size(13)[0]), encode_frame_size(13)[1]
    ('0x830000000000000d', 3)
    """
    padding = (ALIGNMENT - record_bytes % ALIGNMENT) % ALIGNMENT
    word = record_bytes
    if padding:
        word |= (PADDED_FLAG | padding) << 56
    return word, padding


def decode_frame_size(word: int) -> tuple[int, int]:
    """Split a length word into (record bytes, padding bytes), as etcd's ``decodeFrameSize``."""
    record_bytes = word & ((1 << 56) - 1)
    padding = (word >> 56) & 0x7 if word >> 63 else 0
    return record_bytes, padding


# --8<-- [start:frame]
def encode_frame(record: walpb.Record) -> bytes:
    """One framed record: length word, record bytes, zero padding to 8-byte alignment.

    Raises:
        ValueError: the record is too large for any reader to accept (`MAX_RECORD_BYTES`).
    """
    body = record.SerializeToString()
    word, padding = encode_frame_size(len(body))
    if len(body) + padding >= MAX_RECORD_BYTES:
        raise ValueError(f"wal: a record of {len(body)} bytes exceeds {MAX_RECORD_BYTES} bytes")
    return _LENGTH_WORD.pack(word) + body + bytes(padding)


@dataclass(slots=True)
class Encoder:
    """Seals records into the CRC chain and frames them (etcd: ``encoder``, wal/encoder.go).

    ``crc`` is the chain's value after the last record encoded. A new segment continues the
    chain: its first record, ``encode(RecordType.CRC)``, carries ``crc`` unchanged, because the
    CRC of no data continued from ``crc`` is ``crc``.
    """

    crc: int = 0

    def encode(self, record_type: RecordType, data: bytes = b"") -> bytes:
        """Frame one record of ``record_type`` holding ``data``, chained after the last one."""
        crc = chain_crc(data, self.crc)
        frame = encode_frame(walpb.Record(type=record_type, crc=crc, data=data))
        self.crc = crc  # only once the record was framed: a refused record leaves no trace
        return frame


# --8<-- [end:frame]


class Outcome(Enum):
    """How a run of frames ended; see the module docstring."""

    CLEAN = "clean end"
    TORN = "torn tail"
    CORRUPT = "corrupt"


class Frame(NamedTuple):
    """One valid record and where its frame lies in the bytes: ``[offset, end)``.

    A named tuple rather than a frozen dataclass: a segment holds some 400,000 frames, and a
    restart reads them all (issue 12), so making one must cost little.
    """

    offset: int
    end: int
    record: walpb.Record

    @property
    def type(self) -> RecordType:
        return RecordType(self.record.type)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What `decode_frames` found.

    ``end`` is the offset where the valid frames end: the length of the bytes for a clean end,
    else the offset of the frame that failed. ``crc`` is the chain's value after the last valid
    frame, to continue the chain into the next segment. ``reason`` says why decoding stopped.
    """

    frames: tuple[Frame, ...]
    outcome: Outcome
    end: int
    crc: int
    reason: str = ""


# --8<-- [start:decode]
def decode_frames(data: bytes, prev_crc: int | None = None) -> Decoded:
    """Read the frames of one segment, checking the CRC chain; see the module docstring.

    Args:
        data: the segment's bytes, from its start.
        prev_crc: the chain's value at the end of the previous segment, which this segment's
            CRC record must carry; None when unknown (the first segment read, which may not be
            the first segment), and then the CRC record is taken as it is.
    """
    frames: list[Frame] = []
    crc = prev_crc or 0
    chain_known = prev_crc is not None
    offset = 0
    while offset < len(data):
        frame = _next_frame(data, offset, crc, chain_known)
        if isinstance(frame, str):
            outcome = Outcome.CORRUPT if _valid_frame_after(data, offset) else Outcome.TORN
            return Decoded(tuple(frames), outcome, offset, crc, frame)
        crc, chain_known = frame.record.crc, True
        frames.append(frame)
        offset = frame.end
    return Decoded(tuple(frames), Outcome.CLEAN, offset, crc)


# --8<-- [end:decode]


def _read_frame(data: bytes, offset: int) -> Frame | str:
    """The well-formed frame at ``offset``, or why there is none. The CRC is not checked here."""
    if len(data) - offset < FRAME_SIZE_BYTES:
        return "incomplete length word"
    (word,) = _LENGTH_WORD.unpack_from(data, offset)
    if word == 0:
        return "zero length word"
    sizes = _well_formed_sizes(word)
    if sizes is None:
        return f"malformed length word {word:#018x}"
    size, padding = sizes
    if size + padding >= MAX_RECORD_BYTES:
        return f"length word claims {size} bytes, over the {MAX_RECORD_BYTES}-byte limit"
    start = offset + FRAME_SIZE_BYTES
    end = start + size + padding
    if end > len(data):
        return f"incomplete frame: {size + padding} bytes declared, {len(data) - start} present"
    if padding and data.count(0, end - padding, end) != padding:
        return "non-zero padding"
    body = data[start : start + size]
    record = walpb.Record()
    try:
        record.ParseFromString(body)
    except DecodeError:
        return "unparseable record"
    # Only bytes our encoder could have written are accepted. Protobuf's parser forgives a
    # lot (a crc varint with bits above 32, fields repeated or unknown); a damaged record
    # must not slip through that way.
    if record.SerializeToString() != body:
        return "record is not in canonical encoding"
    if record.type not in _RECORD_TYPES:
        return f"unknown record type {record.type}"
    if record.type == RecordType.CRC and record.data:
        return "CRC record with data"
    return Frame(offset, end, record)


@functools.lru_cache(maxsize=1024)
def _well_formed_sizes(word: int) -> tuple[int, int] | None:
    """(record bytes, padding) of a length word our encoder could have written, else None.

    Cached: a log's records come in a few sizes, and a restart reads every one (issue 12).
    """
    size, padding = decode_frame_size(word)
    return (size, padding) if encode_frame_size(size)[0] == word else None


def _next_frame(data: bytes, offset: int, crc: int, chain_known: bool) -> Frame | str:
    """The frame at ``offset`` if it is well-formed and continues the chain, else why not."""
    frame = _read_frame(data, offset)
    if isinstance(frame, str):
        return frame
    return _crc_problem(frame.record, crc, chain_known) or frame


def _crc_problem(record: walpb.Record, crc: int, chain_known: bool) -> str | None:
    """Why ``record`` does not continue a chain whose value is ``crc``, or None if it does."""
    if record.type == RecordType.CRC:
        # etcd's ReadAll: "current crc of decoder must match the crc of the record".
        if chain_known and record.crc != crc:
            return f"CRC record carries {record.crc:#010x}, the chain is at {crc:#010x}"
        return None
    expected = chain_crc(record.data, crc)
    if record.crc != expected:
        return f"crc mismatch: record has {record.crc:#010x}, data gives {expected:#010x}"
    return None


def _valid_frame_after(data: bytes, offset: int) -> bool:
    """Whether a well-formed frame starts at any aligned offset after the one at ``offset``."""
    start = offset + FRAME_SIZE_BYTES
    last = len(data) - FRAME_SIZE_BYTES
    return any(isinstance(_read_frame(data, p), Frame) for p in range(start, last + 1, ALIGNMENT))
