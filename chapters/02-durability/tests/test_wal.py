"""The write-ahead log: segments on disk, reading back after a snapshot, torn tails, corruption."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from kv.api.raftpb import raft_pb2 as raftpb
from kv.api.walpb import record_pb2 as walpb
from kv.wal import (
    WAL,
    RecordType,
    WalCorruptError,
    WalError,
    WalNotFoundError,
    WalSnapshotMismatchError,
    WalSnapshotNotFoundError,
    decode_frames,
    encode_frame,
    segment_name,
    wal_dir,
)
from kv.wal.record import MAX_RECORD_BYTES

METADATA = b"member 8e9e05c52164694d of cluster cdf818194e3a8c32"


def entry(index: int, term: int = 1, data: bytes | None = None) -> raftpb.Entry:
    payload = data if data is not None else b"put key-%d" % index
    return raftpb.Entry(Term=term, Index=index, Data=payload)


def entries(first: int, last: int, term: int = 1) -> list[raftpb.Entry]:
    return [entry(index, term) for index in range(first, last + 1)]


def hard_state(term: int = 1, vote: int = 1, commit: int = 0) -> raftpb.HardState:
    return raftpb.HardState(term=term, vote=vote, commit=commit)


def frame_offsets(path: Path) -> list[int]:
    return [frame.offset for frame in decode_frames(path.read_bytes()).frames]


def written(directory: Path, *saves: tuple[list[raftpb.Entry], raftpb.HardState | None]) -> WAL:
    """A WAL created in ``directory`` with ``saves`` applied and synced, still open."""
    wal = WAL.create(directory, METADATA)
    for batch, state in saves:
        wal.save(batch, state)
    wal.sync()
    return wal


def reopen(directory: Path, snapshot: walpb.Snapshot | None = None) -> tuple[WAL, list[int]]:
    """Open, and the indexes of the entries read back."""
    wal, contents = WAL.open(directory, snapshot)
    return wal, [e.Index for e in contents.entries]


# --- create, save, open ---------------------------------------------------------------------


def test_the_wal_lives_under_member_wal_of_the_data_dir() -> None:
    assert wal_dir("default.etcd") == Path("default.etcd/member/wal")


def test_the_first_segment_is_named_as_etcd_names_it(tmp_path: Path) -> None:
    with WAL.create(tmp_path / "wal", METADATA):
        pass
    assert [p.name for p in (tmp_path / "wal").iterdir()] == [
        "0000000000000000-0000000000000000.wal"
    ]


def test_segment_names_are_sequence_then_index_in_16_hex_digits() -> None:
    """etcd's wal/doc.go: cutting at last index 0x20 makes 0000000000000001-0000000000000021.wal
    (the name holds the index of the first entry the new segment may hold)."""
    assert segment_name(1, 0x21) == "0000000000000001-0000000000000021.wal"


def test_a_new_wal_starts_with_a_crc_record_its_metadata_and_an_empty_snapshot_marker(
    tmp_path: Path,
) -> None:
    with WAL.create(tmp_path, METADATA) as wal:
        path = wal.segments[0].path
    frames = decode_frames(path.read_bytes()).frames
    assert [frame.type for frame in frames] == [
        RecordType.CRC,
        RecordType.METADATA,
        RecordType.SNAPSHOT,
    ]
    assert frames[1].record.data == METADATA
    assert walpb.Snapshot.FromString(frames[2].record.data) == walpb.Snapshot()


def test_create_refuses_a_directory_that_already_holds_a_wal(tmp_path: Path) -> None:
    WAL.create(tmp_path, METADATA).close()
    with pytest.raises(FileExistsError):
        WAL.create(tmp_path, METADATA)


def test_create_leaves_no_temporary_directory(tmp_path: Path) -> None:
    WAL.create(tmp_path / "member" / "wal", METADATA).close()
    assert [p.name for p in (tmp_path / "member").iterdir()] == ["wal"]


def test_a_created_wal_opens_with_its_metadata_and_nothing_else(tmp_path: Path) -> None:
    WAL.create(tmp_path, METADATA).close()
    wal, contents = WAL.open(tmp_path)
    wal.close()
    assert contents.metadata == METADATA
    assert contents.entries == ()
    assert contents.state == raftpb.HardState()


def test_saved_entries_and_hard_state_read_back_after_a_reopen(tmp_path: Path) -> None:
    written(tmp_path, (entries(1, 3), hard_state(commit=2))).close()
    wal, contents = WAL.open(tmp_path)
    wal.close()
    assert list(contents.entries) == entries(1, 3)
    assert contents.state == hard_state(commit=2)


def test_the_last_hard_state_saved_is_the_one_read_back(tmp_path: Path) -> None:
    written(
        tmp_path, (entries(1, 2), hard_state(term=1, commit=1)), ([], hard_state(term=2, vote=3))
    ).close()
    wal, contents = WAL.open(tmp_path)
    wal.close()
    assert contents.state == hard_state(term=2, vote=3)


def test_an_empty_hard_state_is_not_written(tmp_path: Path) -> None:
    with WAL.create(tmp_path, METADATA) as wal:
        size = wal.segments[0].path.stat().st_size
        wal.save([], raftpb.HardState())
        assert wal.segments[0].path.stat().st_size == size


def test_the_file_is_not_preallocated(tmp_path: Path) -> None:
    """Unlike etcd's 64 MB preallocation: the segment's size is what was written."""
    with written(tmp_path, (entries(1, 3), None)) as wal:
        path = wal.segments[0].path
        assert path.stat().st_size == decode_frames(path.read_bytes()).end


def test_a_reopened_wal_appends_after_what_it_read(tmp_path: Path) -> None:
    written(tmp_path, (entries(1, 2), hard_state())).close()
    wal, _ = WAL.open(tmp_path)
    wal.save(entries(3, 4), None)
    wal.close()
    wal, indexes = reopen(tmp_path)
    wal.close()
    assert indexes == [1, 2, 3, 4]


def test_a_save_refused_for_an_oversized_entry_writes_nothing(tmp_path: Path) -> None:
    with WAL.create(tmp_path, METADATA) as wal:
        with pytest.raises(ValueError, match="exceeds"):
            wal.save([entry(1), entry(2, data=bytes(MAX_RECORD_BYTES))], None)
        wal.save([entry(1)], None)  # the CRC chain did not move past the refused records
    wal, indexes = reopen(tmp_path)
    wal.close()
    assert indexes == [1]


def test_a_closed_wal_refuses_writes(tmp_path: Path) -> None:
    wal = WAL.create(tmp_path, METADATA)
    wal.close()
    with pytest.raises(WalError, match="closed"):
        wal.save([entry(1)], None)


def test_a_later_entry_replaces_the_entries_from_its_index_on(tmp_path: Path) -> None:
    """Raft overwrote a conflicting suffix (Raft §5.3); ReadAll keeps the later record."""
    written(tmp_path, (entries(1, 5, term=1), None), (entries(3, 4, term=2), None)).close()
    wal, contents = WAL.open(tmp_path)
    wal.close()
    assert [(e.Index, e.Term) for e in contents.entries] == [(1, 1), (2, 1), (3, 2), (4, 2)]


def test_an_entry_that_leaves_a_gap_is_refused(tmp_path: Path) -> None:
    written(tmp_path, (entries(1, 2), None), ([entry(5)], None)).close()
    with pytest.raises(WalCorruptError, match="gap"):
        WAL.open(tmp_path)


# --- snapshots ------------------------------------------------------------------------------


def test_open_at_a_snapshot_returns_only_the_entries_after_it(tmp_path: Path) -> None:
    with written(tmp_path, (entries(1, 10), hard_state(commit=10))) as wal:
        wal.save_snapshot(walpb.Snapshot(index=6, term=1))
        wal.save(entries(11, 12), None)
    wal, indexes = reopen(tmp_path, walpb.Snapshot(index=6, term=1))
    wal.close()
    assert indexes == [7, 8, 9, 10, 11, 12]


def test_open_at_a_snapshot_with_another_term_is_refused(tmp_path: Path) -> None:
    with written(tmp_path, (entries(1, 5), None)) as wal:
        wal.save_snapshot(walpb.Snapshot(index=4, term=1))
    with pytest.raises(WalSnapshotMismatchError):
        WAL.open(tmp_path, walpb.Snapshot(index=4, term=2))


def test_open_at_a_snapshot_never_saved_is_refused(tmp_path: Path) -> None:
    written(tmp_path, (entries(1, 5), None)).close()
    with pytest.raises(WalSnapshotNotFoundError):
        WAL.open(tmp_path, walpb.Snapshot(index=3, term=1))


def test_open_without_the_segment_holding_the_snapshot_is_refused(tmp_path: Path) -> None:
    WAL.create(tmp_path / "wal", METADATA).close()
    (tmp_path / "wal" / segment_name(0, 0)).rename(tmp_path / "wal" / segment_name(0, 5))
    with pytest.raises(WalNotFoundError):
        WAL.open(tmp_path / "wal", walpb.Snapshot(index=3, term=1))


# --- segments -------------------------------------------------------------------------------


def rolled(directory: Path, segment_size: int = 512, last: int = 60) -> WAL:
    """A WAL with small segments holding entries 1..last, one save each, still open."""
    wal = WAL.create(directory, METADATA, segment_size=segment_size)
    for index in range(1, last + 1):
        wal.save([entry(index)], hard_state(commit=index - 1))
    wal.sync()
    return wal


def test_the_wal_cuts_a_new_segment_once_one_reaches_segment_size(tmp_path: Path) -> None:
    with rolled(tmp_path, segment_size=512) as wal:
        segments = wal.segments
    assert len(segments) > 3
    assert [segment.seq for segment in segments] == list(range(len(segments)))
    for segment in segments[:-1]:
        size = segment.path.stat().st_size
        assert 512 <= size < 512 + 128  # cut by the save that crossed the line


def test_a_segment_is_named_for_the_first_entry_it_may_hold(tmp_path: Path) -> None:
    with rolled(tmp_path) as wal:
        segments = wal.segments
    for segment in segments[1:]:
        first_entry = next(
            raftpb.Entry.FromString(frame.record.data).Index
            for frame in decode_frames(segment.path.read_bytes()).frames
            if frame.type is RecordType.ENTRY
        )
        assert first_entry == segment.index
        assert segment.path.name == segment_name(segment.seq, segment.index)


def test_a_new_segment_starts_with_crc_metadata_and_the_last_hard_state(tmp_path: Path) -> None:
    """etcd's cut: saveCrc(prevCrc), the metadata record, saveState(&w.state)."""
    with rolled(tmp_path) as wal:
        first, second = wal.segments[0], wal.segments[1]
    previous = decode_frames(first.path.read_bytes())
    head = decode_frames(second.path.read_bytes(), previous.crc).frames[:3]
    assert [frame.type for frame in head] == [RecordType.CRC, RecordType.METADATA, RecordType.STATE]
    assert head[0].record.crc == previous.crc
    assert head[1].record.data == METADATA
    assert raftpb.HardState.FromString(head[2].record.data) == hard_state(commit=second.index - 2)


def test_a_wal_reopens_across_its_segments(tmp_path: Path) -> None:
    rolled(tmp_path, last=60).close()
    wal, contents = WAL.open(tmp_path)
    wal.close()
    assert [e.Index for e in contents.entries] == list(range(1, 61))
    assert contents.state == hard_state(commit=59)


def test_a_reopened_wal_keeps_cutting_segments(tmp_path: Path) -> None:
    rolled(tmp_path, last=30).close()
    wal, _ = WAL.open(tmp_path, segment_size=512)
    before = len(wal.segments)
    for index in range(31, 61):
        wal.save([entry(index)], None)
    wal.close()
    wal, indexes = reopen(tmp_path)
    wal.close()
    assert len(wal.segments) > before
    assert indexes == list(range(1, 61))


def test_open_at_a_snapshot_starts_from_the_segment_that_holds_its_index(tmp_path: Path) -> None:
    with rolled(tmp_path) as wal:
        wal.save_snapshot(walpb.Snapshot(index=40, term=1))
    # Damage a segment wholly before index 40: it is never read.
    wal.segments[0].path.write_bytes(b"garbage")
    wal, indexes = reopen(tmp_path, walpb.Snapshot(index=40, term=1))
    wal.close()
    assert indexes == list(range(41, 61))


# --- release and purge ----------------------------------------------------------------------


def snapshot_and_release(wal: WAL, index: int) -> None:
    wal.save_snapshot(walpb.Snapshot(index=index, term=1))
    wal.release_to(index)


def test_purge_removes_released_segments_down_to_max_wals(tmp_path: Path) -> None:
    with rolled(tmp_path, last=60) as wal:
        count = len(wal.segments)
        snapshot_and_release(wal, 60)
        removed = wal.purge(max_wals=2)
        assert len(removed) == count - 2
        assert [s.path for s in wal.segments] == sorted(tmp_path.glob("*.wal"))
        assert len(wal.segments) == 2


def test_purge_removes_the_oldest_segments(tmp_path: Path) -> None:
    with rolled(tmp_path, last=60) as wal:
        oldest = [segment.path for segment in wal.segments[:2]]
        snapshot_and_release(wal, 60)
        assert wal.purge(max_wals=len(wal.segments) - 2) == oldest


def test_purge_keeps_the_segment_holding_the_snapshot_index(tmp_path: Path) -> None:
    with rolled(tmp_path, last=60) as wal:
        needed = next(s for s in reversed(wal.segments) if s.index <= 30)
        snapshot_and_release(wal, 30)
        assert wal.purge(max_wals=1)
        assert needed in wal.segments
    wal, indexes = reopen(tmp_path, walpb.Snapshot(index=30, term=1))
    wal.close()
    assert indexes == list(range(31, 61))


def test_purge_removes_nothing_that_was_not_released(tmp_path: Path) -> None:
    with rolled(tmp_path, last=60) as wal:
        count = len(wal.segments)
        assert wal.purge(max_wals=1) == []
        assert len(wal.segments) == count


def test_purge_keeps_max_wals_segments_even_if_more_are_released(tmp_path: Path) -> None:
    with rolled(tmp_path, last=60) as wal:
        count = len(wal.segments)
        snapshot_and_release(wal, 60)
        wal.purge(max_wals=count - 1)
        assert len(wal.segments) == count - 1


def test_purge_with_max_wals_zero_keeps_every_segment(tmp_path: Path) -> None:
    """etcd's --max-wals 0: unlimited."""
    with rolled(tmp_path, last=60) as wal:
        snapshot_and_release(wal, 60)
        assert wal.purge(max_wals=0) == []


def test_segments_before_the_snapshot_opened_at_are_released(tmp_path: Path) -> None:
    with rolled(tmp_path, last=60) as wal:
        wal.save_snapshot(walpb.Snapshot(index=50, term=1))
    wal, _ = WAL.open(tmp_path, walpb.Snapshot(index=50, term=1))
    with wal:
        first_needed = next(s for s in reversed(wal.segments) if s.index <= 50)
        wal.purge(max_wals=1)
        assert wal.segments[0] == first_needed


# --- torn tails -----------------------------------------------------------------------------


def test_a_wal_cut_at_every_byte_of_its_last_record_reopens_without_it(tmp_path: Path) -> None:
    original = tmp_path / "original"
    saves = (entries(1, 2), hard_state(commit=1)), ([entry(3, data=b"x" * 100)], None)
    written(original, *saves).close()
    path = original / segment_name(0, 0)
    data = path.read_bytes()
    last = frame_offsets(path)[-1]
    for cut in range(last, len(data)):
        copy = tmp_path / f"cut-{cut}"
        shutil.copytree(original, copy)
        (copy / path.name).write_bytes(data[:cut])
        wal, contents = WAL.open(copy)
        assert [e.Index for e in contents.entries] == [1, 2], cut
        assert contents.state == hard_state(commit=1), cut
        assert (copy / path.name).stat().st_size == last, cut
        wal.save([entry(3, term=2)], None)  # and it takes new records
        wal.close()
        wal, contents = WAL.open(copy)
        wal.close()
        assert [(e.Index, e.Term) for e in contents.entries] == [(1, 1), (2, 1), (3, 2)], cut


def test_truncating_a_torn_tail_logs_the_file_and_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with written(tmp_path, (entries(1, 3), None)) as wal:
        path = wal.segments[-1].path
    last = frame_offsets(path)[-1]
    path.write_bytes(path.read_bytes()[:-5])
    with caplog.at_level(logging.WARNING, logger="kv.wal"):
        WAL.open(tmp_path)[0].close()
    assert f"{path}: torn tail at offset {last}" in caplog.text


def test_a_zero_filled_tail_is_truncated(tmp_path: Path) -> None:
    with written(tmp_path, (entries(1, 3), None)) as wal:
        path = wal.segments[-1].path
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + bytes(4096))
    wal, indexes = reopen(tmp_path)
    wal.close()
    assert indexes == [1, 2, 3]
    assert path.stat().st_size == size


def test_a_torn_record_in_a_segment_that_is_not_the_last_is_refused(tmp_path: Path) -> None:
    rolled(tmp_path).close()
    first = tmp_path / segment_name(0, 0)
    last = frame_offsets(first)[-1]
    torn = first.read_bytes()[:-5]
    first.write_bytes(torn)
    with pytest.raises(WalCorruptError) as raised:
        WAL.open(tmp_path)
    assert (raised.value.path, raised.value.offset) == (first, last)
    assert first.read_bytes() == torn  # unchanged


# --- corruption -----------------------------------------------------------------------------


def test_a_flipped_byte_in_an_earlier_record_is_refused_naming_file_and_offset(
    tmp_path: Path,
) -> None:
    with written(tmp_path, (entries(1, 5), hard_state(commit=5))) as wal:
        path = wal.segments[-1].path
    offsets = frame_offsets(path)
    victim = offsets[4]  # CRC, metadata, snapshot marker, entry 1, entry 2 <-
    damaged = bytearray(path.read_bytes())
    damaged[victim + 20] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(WalCorruptError) as raised:
        WAL.open(tmp_path)
    assert (raised.value.path, raised.value.offset) == (path, victim)
    assert str(path) in str(raised.value) and f"offset {victim}" in str(raised.value)
    assert path.read_bytes() == bytes(damaged)  # nothing was changed


def test_every_flipped_byte_of_an_earlier_record_is_refused(tmp_path: Path) -> None:
    original = tmp_path / "original"
    written(original, (entries(1, 5), hard_state(commit=5))).close()
    path = original / segment_name(0, 0)
    data = path.read_bytes()
    start, end = frame_offsets(path)[4:6]
    for position in range(start, end):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[position] ^= flip
            path.write_bytes(bytes(damaged))
            with pytest.raises(WalCorruptError) as raised:
                WAL.open(original)
            assert raised.value.offset == start, (position, flip)


def test_a_segment_missing_from_the_sequence_is_refused(tmp_path: Path) -> None:
    with rolled(tmp_path) as wal:
        missing = wal.segments[1].path
    missing.unlink()
    with pytest.raises(WalCorruptError, match="missing"):
        WAL.open(tmp_path)


def test_segments_whose_crc_chain_does_not_join_are_refused(tmp_path: Path) -> None:
    """Every segment's CRC record must carry the chain's value at the end of the previous one."""
    with rolled(tmp_path) as wal:
        second = wal.segments[1].path
    data = second.read_bytes()
    head = decode_frames(data).frames[0]
    wrong = encode_frame(walpb.Record(type=RecordType.CRC, crc=head.record.crc ^ 1))
    second.write_bytes(wrong + data[head.end :])
    with pytest.raises(WalCorruptError) as raised:
        WAL.open(tmp_path)
    assert (raised.value.path, raised.value.offset) == (second, 0)
