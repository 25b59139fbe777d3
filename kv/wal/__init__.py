"""kv.wal: the write-ahead log, where Raft's entries and hard state become durable (chapter 2).

It follows etcd's ``wal`` package: the same record types, framing and CRC chain, the same
segment files and names, the same way of reading back after a snapshot. Chapter 3's Raft
saves its ``Ready`` here before it sends a message or applies an entry.

Modules, in reading order:

* `record` -- `RecordType`, the framing of a record on disk (`encode_frame`), the CRC chain
  (`Encoder`), and `decode_frames`, which tells a clean end from a torn tail from corruption.
  Pure: bytes in, bytes out.
* `errors` -- `WalError` and its kinds: `WalCorruptError` (names the file and the offset),
  `WalNotFoundError`, `WalSnapshotNotFoundError`, `WalSnapshotMismatchError`.
* `segments` -- the segment files in ``<data-dir>/member/wal`` (`wal_dir`): their layout, their
  names (`segment_name`, `parse_segment_name`), and which ones a read starts from.
* `replay` -- reading the log back: the records replayed into `WalContents`, each segment
  decoded and checked, a torn tail of the last one truncated (etcd's ``Repair``).
* `wal` -- `WAL`: `WAL.create`, `WAL.open`, `WAL.save`, `WAL.sync`, `WAL.save_snapshot`,
  segment cuts, `WAL.release_to` and `WAL.purge`.
"""

from kv.wal.errors import (
    WalCorruptError,
    WalError,
    WalNotFoundError,
    WalSnapshotMismatchError,
    WalSnapshotNotFoundError,
)
from kv.wal.record import (
    Decoded,
    Encoder,
    Frame,
    Outcome,
    RecordType,
    decode_frames,
    encode_frame,
)
from kv.wal.replay import WalContents
from kv.wal.segments import Segment, parse_segment_name, segment_name, wal_dir
from kv.wal.wal import DEFAULT_MAX_WALS, SEGMENT_SIZE_BYTES, WAL, is_empty_hard_state

__all__ = [
    "DEFAULT_MAX_WALS",
    "SEGMENT_SIZE_BYTES",
    "WAL",
    "Decoded",
    "Encoder",
    "Frame",
    "Outcome",
    "RecordType",
    "Segment",
    "WalContents",
    "WalCorruptError",
    "WalError",
    "WalNotFoundError",
    "WalSnapshotMismatchError",
    "WalSnapshotNotFoundError",
    "decode_frames",
    "encode_frame",
    "is_empty_hard_state",
    "parse_segment_name",
    "segment_name",
    "wal_dir",
]
