"""The write-ahead log: what Raft must not forget, on disk before anyone relies on it (chapter 2).

A Raft node may answer a vote or acknowledge an append only once its log entries and its hard
state (term, vote, commit index) are durable: forgetting a vote after a restart could elect two
leaders in one term, and forgetting an acknowledged entry could lose a committed write (Raft
§5, Figure 2). etcd keeps both in its WAL (``wal/wal.go``), and so does kv: chapter 2 writes
the log, chapter 3's Raft fills it.

Layout
------
The log lives in ``<data-dir>/member/wal/`` (`wal_dir`) as a sequence of *segment* files named
as etcd names them, ``%016x-%016x.wal``: the segment's sequence number and the Raft index of
the first entry it may hold, e.g. ``0000000000000001-0000000000000021.wal``. Every segment
starts with the same head (etcd's ``Create`` and ``cut``)::

    CRC record     the CRC chain's value at the end of the previous segment (0 for the first)
    METADATA       the bytes given to `WAL.create`, repeated in every segment
    STATE          the last hard state (none in the first segment) ...
    SNAPSHOT       ... or, in the first segment, an empty snapshot marker (index 0, term 0)

followed by ENTRY, STATE and SNAPSHOT records in the order they were saved. `WAL.save` appends;
when the segment has grown past ``segment_size`` (etcd's 64 MB) the WAL *cuts*: it writes the
next segment's head to a temporary file, fsyncs it, renames it into place and fsyncs the
directory, so a segment is never seen half-made.

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

No preallocation
----------------
etcd preallocates every segment to 64 MB, so appends do not change the file's size and its
``fdatasync`` has less metadata to write. kv does not: a reader of kv's WAL (a person, a test,
the next chapter) sees the segment's real size, and the end of the file is the end of the log.
The price is one more piece of metadata per fsync. Torn-tail detection then mostly sees files
cut short; zeros at the end appear only in the rarer case that the filesystem extended the file
before the data landed, and they are recognised as a torn tail too.

Threads
-------
Everything runs on the caller's thread except that `WAL.sync` may be run in a worker thread
(`kv.server`'s Raft disk runs it on `kv.server.disk.fsync_thread`). A lock keeps that fsync off a
file that `WAL.save` is cutting or `WAL.close` is closing; the Raft loop never saves while its
fsync runs, so the lock is not contended there. etcd also holds a file lock on every segment it
has open; kv does not (one process owns a data directory).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypeVar

from google.protobuf.message import DecodeError, Message

from kv.api.raftpb import raft_pb2 as raftpb
from kv.api.walpb import record_pb2 as walpb
from kv.fsutil import fsync_dir
from kv.wal.record import Decoded, Encoder, Frame, Outcome, RecordType, decode_frames

logger = logging.getLogger(__name__)

# etcd: wal.SegmentSizeBytes = 64 * 1000 * 1000 ("64MB", decimal megabytes).
SEGMENT_SIZE_BYTES = 64 * 1000 * 1000
DEFAULT_MAX_WALS = 5  # etcd's --max-wals
WAL_SUFFIX = ".wal"
TMP_SUFFIX = ".tmp"
FILE_MODE = 0o600  # etcd: fileutil.PrivateFileMode
DIR_MODE = 0o700  # etcd: fileutil.PrivateDirMode
_SEGMENT_NAME = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})\.wal")

M = TypeVar("M", bound=Message)


class LogEntry(Protocol):
    """An entry as `WAL.save` takes it: a ``raftpb.Entry``, or one encoded beforehand (the
    server encodes each entry once for its WAL and its peers: `kv.server.wire_bytes`)."""

    @property
    def Index(self) -> int: ...  # raftpb.Entry's field

    def SerializeToString(self) -> bytes: ...  # protobuf's method


class WalError(Exception):
    """Base class of the WAL's errors."""


class WalCorruptError(WalError):
    """A record that was once written whole is damaged, or a segment is missing.

    ``path`` and ``offset`` say where: the file, and the byte offset of the frame that failed.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"wal: corrupt record in {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class WalNotFoundError(WalError):
    """No segment holds the requested snapshot's index (etcd: ``ErrFileNotFound``)."""


class WalSnapshotNotFoundError(WalError):
    """The log has no marker for the requested snapshot (etcd: ``ErrSnapshotNotFound``)."""


class WalSnapshotMismatchError(WalError):
    """The log's marker for the snapshot's index has another term (``ErrSnapshotMismatch``)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment file: its sequence number and the index of the first entry it may hold."""

    seq: int
    index: int
    path: Path


@dataclass(frozen=True, slots=True)
class WalContents:
    """What `WAL.open` read back: etcd's ``ReadAll`` results."""

    metadata: bytes
    state: raftpb.HardState  # the last hard state saved; all zeros if none
    entries: tuple[raftpb.Entry, ...]  # the entries after the snapshot, in index order


def wal_dir(data_dir: Path | str) -> Path:
    """Where a member keeps its WAL: ``<data-dir>/member/wal`` (etcd's layout)."""
    return Path(data_dir) / "member" / "wal"


def segment_name(seq: int, index: int) -> str:
    """A segment's file name, as etcd's ``walName``: ``%016x-%016x.wal``."""
    return f"{seq:016x}-{index:016x}{WAL_SUFFIX}"


def parse_segment_name(name: str) -> tuple[int, int]:
    """(sequence, index) from a segment's file name.

    Raises:
        ValueError: ``name`` is not a segment name.
    """
    match = _SEGMENT_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"wal: not a segment name: {name!r}")
    return int(match[1], 16), int(match[2], 16)


def is_empty_hard_state(state: raftpb.HardState) -> bool:
    """A hard state of all zeros, which etcd never writes (etcd: ``raft.IsEmptyHardState``)."""
    return state.term == 0 and state.vote == 0 and state.commit == 0


class WAL:
    """A write-ahead log of Raft entries and hard state, in segment files of one directory.

    Make one with `WAL.create` or `WAL.open`; write with `save` (buffered by the OS) and make
    it durable with `sync`; mark snapshots with `save_snapshot`; drop old segments with
    `release_to` and `purge`; `close` when done (also a context manager). Example::

        wal = WAL.create(wal_dir("default.etcd"), metadata=b"node 1")
        wal.save([raftpb.Entry(Term=1, Index=1, Data=b"put a=1")], raftpb.HardState(term=1))
        wal.sync()
        wal.close()
        wal, contents = WAL.open(wal_dir("default.etcd"))
    """

    __slots__ = (
        "_broken",
        "_closed",
        "_directory",
        "_encoder",
        "_fd",
        "_last_index",
        "_lock",
        "_metadata",
        "_released",
        "_segment_size",
        "_segments",
        "_state",
        "_tail_size",
    )

    def __init__(
        self,
        directory: Path,
        segments: list[Segment],
        fd: int,
        tail_size: int,
        *,
        encoder: Encoder,
        metadata: bytes,
        state: raftpb.HardState,
        last_index: int,
        released: int,
        segment_size: int,
    ) -> None:
        """Use `create` or `open`."""
        self._directory = directory
        self._segments = segments
        self._fd = fd  # the last segment, opened for appending
        self._tail_size = tail_size
        self._encoder = encoder
        self._metadata = metadata
        self._state = state  # the last non-empty hard state saved, for the next segment's head
        self._last_index = last_index  # the last entry (or snapshot) index saved: etcd's enti
        self._released = released  # how many of the first segments may be purged
        self._segment_size = segment_size
        self._lock = threading.Lock()
        self._broken: OSError | None = None
        self._closed = False

    # --- creating and opening -------------------------------------------------------------

    @classmethod
    def create(
        cls, directory: Path | str, metadata: bytes, *, segment_size: int = SEGMENT_SIZE_BYTES
    ) -> WAL:
        """Create a new WAL in ``directory`` with its first segment, ready to append.

        As etcd's ``Create``, the first segment is written in ``<directory>.tmp`` and the
        directory is renamed into place, so a crash leaves either no WAL or a whole one.

        Raises:
            FileExistsError: ``directory`` already holds a WAL.
        """
        directory = Path(directory)
        if _list_segments(directory):
            raise FileExistsError(errno.EEXIST, "wal: a WAL already exists", str(directory))
        tmp = directory.with_name(directory.name + TMP_SUFFIX)
        if tmp.exists():
            shutil.rmtree(tmp)  # left by a crash during an earlier create
        tmp.mkdir(mode=DIR_MODE, parents=True)
        encoder = Encoder()
        head = (
            encoder.encode(RecordType.CRC)
            + encoder.encode(RecordType.METADATA, metadata)
            + encoder.encode(RecordType.SNAPSHOT, walpb.Snapshot().SerializeToString())
        )
        name = segment_name(0, 0)
        fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, FILE_MODE)
        try:
            _write_all(fd, head)
            os.fsync(fd)
            fsync_dir(tmp)
            if directory.exists():
                directory.rmdir()  # an empty directory may be replaced, nothing else
            tmp.rename(directory)
            fsync_dir(directory.parent)  # make the rename durable
        except BaseException:
            os.close(fd)
            raise
        logger.info("wal: created %s", directory / name)
        return cls(
            directory,
            [Segment(0, 0, directory / name)],
            fd,
            len(head),
            encoder=encoder,
            metadata=metadata,
            state=raftpb.HardState(),
            last_index=0,
            released=0,
            segment_size=segment_size,
        )

    @classmethod
    def open(
        cls,
        directory: Path | str,
        snapshot: walpb.Snapshot | None = None,
        *,
        segment_size: int = SEGMENT_SIZE_BYTES,
    ) -> tuple[WAL, WalContents]:
        """Open the WAL in ``directory`` at ``snapshot``, read it back, and get ready to append.

        Reads from the segment that holds ``snapshot.index`` (None: index 0, term 0, the marker
        `create` writes) to the end, checking every record and the CRC chain. Only when all of
        it checks out is a torn tail of the last segment truncated.

        Returns:
            The WAL, positioned to append, and what it holds (`WalContents`).

        Raises:
            WalNotFoundError: no segment could hold the snapshot's index.
            WalCorruptError: a damaged record or a missing segment; nothing was changed.
            WalSnapshotNotFoundError: no marker for ``snapshot`` in the segments read.
            WalSnapshotMismatchError: the marker for its index has another term.
        """
        directory = Path(directory)
        start = snapshot if snapshot is not None else walpb.Snapshot()
        segments = _list_segments(directory)
        first = _first_needed(segments, start.index)
        if first is None:
            raise WalNotFoundError(f"wal: no segment in {directory} holds index {start.index}")
        _check_sequence(segments[first:])
        replay = _Replay(start)
        crc: int | None = None
        decoded: Decoded | None = None
        for segment in segments[first:]:
            decoded = _decode_segment(segment, crc, last=segment is segments[-1])
            for frame in decoded.frames:
                replay.apply(frame, segment.path)
            crc = decoded.crc
        assert decoded is not None and crc is not None  # segments[first:] is never empty
        if not replay.snapshot_found:
            raise WalSnapshotNotFoundError(
                f"wal: no marker for snapshot index {start.index} term {start.term} in {directory}"
            )
        # --8<-- [start:repair]
        # Every record checked out: only now may the log be changed.
        tail = segments[-1]
        if decoded.outcome is Outcome.TORN:
            _truncate_torn_tail(tail.path, decoded)
        # --8<-- [end:repair]
        fd = os.open(tail.path, os.O_WRONLY | os.O_APPEND)
        wal = cls(
            directory,
            segments,
            fd,
            decoded.end,
            encoder=Encoder(crc),
            metadata=replay.metadata or b"",
            state=_copy_state(replay.state),  # save() updates its own copy
            last_index=replay.last_index,
            # Segments before the one holding the snapshot are not needed (etcd does not even
            # lock them): they may be purged.
            released=first,
            segment_size=segment_size,
        )
        contents = WalContents(replay.metadata or b"", replay.state, tuple(replay.entries))
        return wal, contents

    # --- writing --------------------------------------------------------------------------

    # --8<-- [start:save]
    def save(self, entries: Sequence[LogEntry], state: raftpb.HardState | None = None) -> None:
        """Append ``entries``, then ``state``; not durable until `sync` (etcd: ``Save``).

        An empty or all-zero ``state`` is not written, and a call with nothing to write does
        nothing. When the segment has grown to ``segment_size``, the WAL cuts to a new one
        (which syncs: the old segment must be whole before the new one exists).
        """
        with self._lock:
            self._check_usable()
            has_state = state is not None and not is_empty_hard_state(state)
            if not entries and not has_state:
                return  # etcd: "short cut, do not call sync"
            # Chain on a copy of the encoder: if a record is refused (too large), the chain must
            # not have moved past records that were never written.
            encoder = Encoder(self._encoder.crc)
            frames = [encoder.encode(RecordType.ENTRY, e.SerializeToString()) for e in entries]
            if state is not None and has_state:
                frames.append(encoder.encode(RecordType.STATE, state.SerializeToString()))
                self._state.CopyFrom(state)
            self._encoder = encoder
            with self._io():
                self._append(b"".join(frames))
                if entries:
                    self._last_index = entries[-1].Index
                if self._tail_size >= self._segment_size:
                    self._cut()

    # --8<-- [end:save]

    def save_snapshot(self, snapshot: walpb.Snapshot) -> None:
        """Record that a snapshot covers the log up to ``snapshot.index``, and sync.

        After this, `open` at that snapshot finds its marker (etcd: ``SaveSnapshot``).
        """
        with self._lock:
            self._check_usable()
            frame = self._encoder.encode(RecordType.SNAPSHOT, snapshot.SerializeToString())
            with self._io():
                self._append(frame)
                # etcd: "update enti only when snapshot is ahead of last index"
                self._last_index = max(self._last_index, snapshot.index)
                _fdatasync(self._fd)

    def sync(self) -> None:
        """Make everything saved so far durable: fdatasync the segment being written.

        Earlier segments were synced when the WAL cut to the next one. May run in a worker
        thread (see the module docstring).
        """
        with self._lock:
            self._check_usable()
            with self._io():
                _fdatasync(self._fd)

    def close(self) -> None:
        """Sync and close the segment being written. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._broken is None:
                    _fdatasync(self._fd)
            finally:
                os.close(self._fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- dropping old segments ------------------------------------------------------------

    def release_to(self, index: int) -> None:
        """Allow `purge` to remove the segments wholly before ``index``, a snapshot's index.

        A segment is wholly before ``index`` when the next segment starts at or before
        ``index - 1``: every entry it holds is then covered by the snapshot. The last segment
        whose first index is below ``index`` is kept, because `open` at that snapshot starts
        reading there (etcd: ``ReleaseLockTo``, "release the locks ... except the largest one").
        """
        keep_from = next(
            (i - 1 for i, segment in enumerate(self._segments) if segment.index >= index),
            len(self._segments) - 1,
        )
        self._released = max(self._released, keep_from)

    def purge(self, max_wals: int = DEFAULT_MAX_WALS) -> list[Path]:
        """Remove released segments, oldest first, while more than ``max_wals`` remain.

        Like etcd's purge of WAL files (``fileutil.PurgeFile`` with ``--max-wals``), it never
        removes a segment that `release_to` did not release, so the WAL may keep more than
        ``max_wals`` files; ``max_wals`` <= 0 keeps every file (etcd: "0 is unlimited").

        Returns:
            The paths removed.
        """
        if max_wals <= 0:
            return []
        count = max(0, min(self._released, len(self._segments) - max_wals))
        removed = []
        for _ in range(count):
            path = self._segments.pop(0).path
            self._released -= 1
            path.unlink(missing_ok=True)
            logger.info("wal: purged %s", path)
            removed.append(path)
        return removed

    # --- what it holds --------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The segment files, oldest first; the last is the one being written."""
        return tuple(self._segments)

    @property
    def last_index(self) -> int:
        """The index of the last entry saved, or of a later snapshot marker (etcd's ``enti``)."""
        return self._last_index

    @property
    def segment_size(self) -> int:
        return self._segment_size

    # --- inside ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise WalError("wal: closed")
        if self._broken is not None:
            # After a failed write or fsync the file's contents are unknown (a later fsync may
            # even succeed without the lost pages): etcd stops the member; we refuse to go on.
            raise WalError("wal: an earlier write or fsync failed") from self._broken

    @contextmanager
    def _io(self) -> Iterator[None]:
        """Around every write and fsync: an OSError leaves the WAL unusable (`_check_usable`)."""
        try:
            yield
        except OSError as exc:
            self._broken = exc
            raise

    def _append(self, data: bytes) -> None:
        _write_all(self._fd, data)
        self._tail_size += len(data)

    def _cut(self) -> None:
        """Start the next segment (etcd: ``cut``): its head in a temp file, synced, renamed."""
        _fdatasync(self._fd)  # the segment we leave must be whole before the next one exists
        seq, index = self._segments[-1].seq + 1, self._last_index + 1
        path = self._directory / segment_name(seq, index)
        tmp = path.with_name(path.name + TMP_SUFFIX)
        head = self._encoder.encode(RecordType.CRC) + self._encoder.encode(
            RecordType.METADATA, self._metadata
        )
        if not is_empty_hard_state(self._state):
            head += self._encoder.encode(RecordType.STATE, self._state.SerializeToString())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, FILE_MODE)
        try:
            _write_all(fd, head)
            _fdatasync(fd)
            tmp.rename(path)
            fsync_dir(self._directory)
        except BaseException:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd, self._tail_size = fd, len(head)
        self._segments.append(Segment(seq, index, path))
        logger.info("wal: created segment %s", path)


@dataclass(slots=True)
class _Replay:
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


def _copy_state(state: raftpb.HardState) -> raftpb.HardState:
    copy = raftpb.HardState()
    copy.CopyFrom(state)
    return copy


def _list_segments(directory: Path) -> list[Segment]:
    """The segment files in ``directory``, oldest first (etcd: ``readWALNames``)."""
    if not directory.is_dir():
        return []
    segments = []
    for path in directory.iterdir():
        if path.suffix != WAL_SUFFIX:
            continue
        try:
            seq, index = parse_segment_name(path.name)
        except ValueError:
            logger.warning("wal: ignored file %s in the WAL directory", path)
            continue
        segments.append(Segment(seq, index, path))
    return sorted(segments, key=lambda segment: segment.seq)


def _first_needed(segments: list[Segment], index: int) -> int | None:
    """Position of the last segment whose first index is <= ``index`` (etcd: ``searchIndex``)."""
    found = [i for i, segment in enumerate(segments) if segment.index <= index]
    return found[-1] if found else None


def _check_sequence(segments: list[Segment]) -> None:
    """Refuse a gap in the sequence numbers: a segment is missing (etcd: ``isValidSeq``)."""
    for before, after in itertools.pairwise(segments):
        if after.seq != before.seq + 1:
            reason = f"segment {before.seq + 1:016x} is missing before {after.path.name}"
            raise WalCorruptError(before.path, before.path.stat().st_size, reason)


def _decode_segment(segment: Segment, prev_crc: int | None, *, last: bool) -> Decoded:
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


def _truncate_torn_tail(path: Path, decoded: Decoded) -> None:
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


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``: os.write may write less than asked."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fdatasync(fd: int) -> None:
    """Flush a file's data and the metadata needed to read it back (etcd: ``Fdatasync``)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # macOS has no fdatasync
        os.fsync(fd)
