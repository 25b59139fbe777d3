"""kv.wal: the write-ahead log, where Raft's entries and hard state become durable (chapter 2).

It follows etcd's ``wal`` package: the same record types, framing and CRC chain, the same
segment files and names, the same way of reading back after a snapshot. Chapter 3's Raft
saves its ``Ready`` here before it sends a message or applies an entry.

Modules, in reading order:

* `record` -- `RecordType`, the framing of a record on disk (`encode_frame`), the CRC chain
  (`Encoder`), and `decode_frames`, which tells a clean end from a torn tail from corruption.
  Pure: bytes in, bytes out.
* `wal` -- `WAL`: segment files in ``<data-dir>/member/wal``; `WAL.create`, `WAL.open` (with
  `WalContents`), `WAL.save`, `WAL.sync`, `WAL.save_snapshot`, segment cuts, `WAL.release_to`
  and `WAL.purge`; and the errors.
"""

from kv.wal.record import (
    Decoded,
    Encoder,
    Frame,
    Outcome,
    RecordType,
    decode_frames,
    encode_frame,
)
from kv.wal.wal import (
    DEFAULT_MAX_WALS,
    SEGMENT_SIZE_BYTES,
    WAL,
    Segment,
    WalContents,
    WalCorruptError,
    WalError,
    WalNotFoundError,
    WalSnapshotMismatchError,
    WalSnapshotNotFoundError,
    is_empty_hard_state,
    parse_segment_name,
    segment_name,
    wal_dir,
)

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
