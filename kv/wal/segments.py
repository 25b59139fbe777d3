"""The WAL's segment files: their names, their order, which one to read from (chapter 2).

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
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from kv.wal.errors import WalCorruptError

logger = logging.getLogger(__name__)

WAL_SUFFIX = ".wal"
_SEGMENT_NAME = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})\.wal")


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment file: its sequence number and the index of the first entry it may hold."""

    seq: int
    index: int
    path: Path


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


def list_segments(directory: Path) -> list[Segment]:
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


def first_needed(segments: list[Segment], index: int) -> int | None:
    """Position of the last segment whose first index is <= ``index`` (etcd: ``searchIndex``)."""
    found = [i for i, segment in enumerate(segments) if segment.index <= index]
    return found[-1] if found else None


def check_sequence(segments: list[Segment]) -> None:
    """Refuse a gap in the sequence numbers: a segment is missing (etcd: ``isValidSeq``)."""
    for before, after in itertools.pairwise(segments):
        if after.seq != before.seq + 1:
            reason = f"segment {before.seq + 1:016x} is missing before {after.path.name}"
            raise WalCorruptError(before.path, before.path.stat().st_size, reason)


__all__ = [
    "WAL_SUFFIX",
    "Segment",
    "check_sequence",
    "first_needed",
    "list_segments",
    "parse_segment_name",
    "segment_name",
    "wal_dir",
]
