"""The write-ahead log: what Raft must not forget, on disk before anyone relies on it (chapter 2).

A Raft node may answer a vote or acknowledge an append only once its log entries and its hard
state (term, vote, commit index) are durable: forgetting a vote after a restart could elect two
leaders in one term, and forgetting an acknowledged entry could lose a committed write (Raft
§5, Figure 2). etcd keeps both in its WAL (``wal/wal.go``), and so does kv: chapter 2 writes
the log, chapter 3's Raft fills it.

The segment files and the head each one starts with are described in `kv.wal.segments`;
reading the log back after a crash, and repairing a torn tail, in `kv.wal.replay`.

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
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from kv.api.raftpb import raft_pb2 as raftpb
from kv.api.walpb import record_pb2 as walpb
from kv.fsutil import fsync_dir
from kv.wal.errors import WalError, WalNotFoundError, WalSnapshotNotFoundError
from kv.wal.record import Decoded, Encoder, Outcome, RecordType
from kv.wal.replay import Replay, WalContents, decode_segment, truncate_torn_tail
from kv.wal.segments import (
    Segment,
    check_sequence,
    first_needed,
    list_segments,
    segment_name,
)

logger = logging.getLogger(__name__)

# etcd: wal.SegmentSizeBytes = 64 * 1000 * 1000 ("64MB", decimal megabytes).
SEGMENT_SIZE_BYTES = 64 * 1000 * 1000
DEFAULT_MAX_WALS = 5  # etcd's --max-wals
TMP_SUFFIX = ".tmp"
FILE_MODE = 0o600  # etcd: fileutil.PrivateFileMode
DIR_MODE = 0o700  # etcd: fileutil.PrivateDirMode


class LogEntry(Protocol):
    """An entry as `WAL.save` takes it: a ``raftpb.Entry``, or one encoded beforehand (the
    server encodes each entry once for its WAL and its peers: `kv.server.wire_bytes`)."""

    @property
    def Index(self) -> int: ...  # raftpb.Entry's field

    def SerializeToString(self) -> bytes: ...  # protobuf's method


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
        if list_segments(directory):
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
        segments = list_segments(directory)
        first = first_needed(segments, start.index)
        if first is None:
            raise WalNotFoundError(f"wal: no segment in {directory} holds index {start.index}")
        check_sequence(segments[first:])
        replay = Replay(start)
        crc: int | None = None
        decoded: Decoded | None = None
        for segment in segments[first:]:
            decoded = decode_segment(segment, crc, last=segment is segments[-1])
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
            truncate_torn_tail(tail.path, decoded)
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


def _copy_state(state: raftpb.HardState) -> raftpb.HardState:
    copy = raftpb.HardState()
    copy.CopyFrom(state)
    return copy


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


__all__ = [
    "DEFAULT_MAX_WALS",
    "SEGMENT_SIZE_BYTES",
    "WAL",
    "LogEntry",
    "is_empty_hard_state",
]
