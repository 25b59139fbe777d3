"""WAL records on disk: etcd's framing, the CRC chain, and what the decoder makes of damage."""

from __future__ import annotations

import itertools
import struct

import pytest

from kv.api.raftpb import raft_pb2 as raftpb
from kv.api.walpb import record_pb2 as walpb
from kv.wal.record import (
    MAX_RECORD_BYTES,
    Encoder,
    Outcome,
    RecordType,
    chain_crc,
    decode_frame_size,
    decode_frames,
    encode_frame,
    encode_frame_size,
)


def entry_data(index: int, payload: bytes = b"value") -> bytes:
    return raftpb.Entry(Term=1, Index=index, Data=payload + b"-%d" % index).SerializeToString()


def segment(entries: int = 3) -> tuple[bytes, list[int]]:
    """A segment's bytes (CRC, metadata, entries) and the offset of every frame."""
    encoder = Encoder()
    frames = [encoder.encode(RecordType.CRC), encoder.encode(RecordType.METADATA, b"meta")]
    frames += [encoder.encode(RecordType.ENTRY, entry_data(i)) for i in range(1, entries + 1)]
    offsets = [sum(len(frame) for frame in frames[:i]) for i in range(len(frames))]
    return b"".join(frames), offsets


# --- framing ------------------------------------------------------------------------------


def test_a_record_survives_a_frame_round_trip() -> None:
    record = walpb.Record(type=RecordType.ENTRY, crc=chain_crc(b"some data", 0), data=b"some data")
    decoded = decode_frames(encode_frame(record))
    assert decoded.outcome is Outcome.CLEAN
    assert [frame.record for frame in decoded.frames] == [record]


def test_the_length_word_is_little_endian_and_counts_the_record_bytes() -> None:
    record = walpb.Record(type=RecordType.METADATA, data=b"x" * 300)
    (word,) = struct.unpack_from("<Q", encode_frame(record))
    assert decode_frame_size(word)[0] == len(record.SerializeToString())


def test_frames_are_padded_to_a_multiple_of_8_bytes() -> None:
    for length in range(17):
        frame = encode_frame(walpb.Record(type=RecordType.METADATA, data=b"x" * length))
        assert len(frame) % 8 == 0, length


def test_padding_is_zeros_after_the_record() -> None:
    record = walpb.Record(type=RecordType.METADATA, data=b"abc")  # 7 bytes encoded
    frame = encode_frame(record)
    assert frame[8:15] == record.SerializeToString()
    assert frame[15:] == b"\0"


def test_the_length_word_carries_the_padding_in_its_top_byte() -> None:
    """etcd's encodeFrameSize: ``lenField |= uint64(0x80|padBytes) << 56``."""
    assert encode_frame_size(13) == ((0x83 << 56) | 13, 3)
    assert encode_frame_size(1) == ((0x87 << 56) | 1, 7)


def test_a_record_of_a_multiple_of_8_bytes_has_no_padding_flag() -> None:
    assert encode_frame_size(16) == (16, 0)
    assert encode_frame_size(0) == (0, 0)


def test_decode_frame_size_inverts_encode_frame_size() -> None:
    for size in (*range(40), 4095, 4096, 1 << 20):
        word, padding = encode_frame_size(size)
        assert decode_frame_size(word) == (size, padding)


def test_a_crc_record_is_framed_byte_for_byte_as_etcd_frames_it() -> None:
    # Record{type: 4} is 2 bytes in proto3 (08 04): length 2, 6 bytes of padding, so the
    # little-endian length word is 02 00 00 00 00 00 00 86.
    frame = encode_frame(walpb.Record(type=RecordType.CRC, crc=0))
    assert frame == bytes.fromhex("0200000000000086" + "0804" + "00" * 6)


def test_a_record_over_the_size_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode_frame(walpb.Record(type=RecordType.ENTRY, data=bytes(MAX_RECORD_BYTES)))


def test_the_record_types_are_etcds() -> None:
    """etcd: metadataType = 1, entryType, stateType, crcType, snapshotType (wal/wal.go)."""
    assert [(t.name, t.value) for t in RecordType] == [
        ("METADATA", 1),
        ("ENTRY", 2),
        ("STATE", 3),
        ("CRC", 4),
        ("SNAPSHOT", 5),
    ]


# --- the CRC chain ------------------------------------------------------------------------


def test_the_crc_is_crc32c_castagnoli() -> None:
    assert chain_crc(b"123456789", 0) == 0xE3069283  # the CRC-32C check value


def test_each_record_crc_chains_from_the_previous_one() -> None:
    data, _ = segment(entries=3)
    records = [frame.record for frame in decode_frames(data).frames]
    for before, after in itertools.pairwise(records):
        assert after.crc == chain_crc(after.data, before.crc)


def test_a_crc_record_carries_the_chain_value_unchanged() -> None:
    encoder = Encoder()
    encoder.encode(RecordType.METADATA, b"meta")
    value = encoder.crc
    record = decode_frames(encoder.encode(RecordType.CRC), prev_crc=value).frames[0].record
    assert record.crc == value
    assert encoder.crc == value


def test_the_encoder_starts_the_chain_at_zero() -> None:
    record = decode_frames(Encoder().encode(RecordType.METADATA, b"m")).frames[0].record
    assert record.crc == chain_crc(b"m", 0)


# --- decoding: clean ends -----------------------------------------------------------------


def test_whole_frames_decode_to_a_clean_end() -> None:
    data, offsets = segment()
    decoded = decode_frames(data)
    assert decoded.outcome is Outcome.CLEAN
    assert [frame.offset for frame in decoded.frames] == offsets
    assert decoded.end == len(data)


def test_no_bytes_are_a_clean_end() -> None:
    decoded = decode_frames(b"")
    assert (decoded.outcome, decoded.end, decoded.frames) == (Outcome.CLEAN, 0, ())


def test_decoding_returns_the_chain_value_for_the_next_segment() -> None:
    data, _ = segment()
    decoded = decode_frames(data)
    assert decoded.crc == decoded.frames[-1].record.crc


def test_a_segment_continues_the_chain_of_the_previous_one() -> None:
    first = Encoder()
    first.encode(RecordType.METADATA, b"meta")
    second = Encoder(first.crc)
    data = second.encode(RecordType.CRC) + second.encode(RecordType.ENTRY, entry_data(1))
    assert decode_frames(data, prev_crc=first.crc).outcome is Outcome.CLEAN


# --- decoding: torn tails -----------------------------------------------------------------


def test_a_last_frame_cut_short_at_any_byte_is_a_torn_tail() -> None:
    data, offsets = segment()
    last = offsets[-1]
    for cut in range(last + 1, len(data)):
        decoded = decode_frames(data[:cut])
        assert (decoded.outcome, decoded.end) == (Outcome.TORN, last), cut
        assert len(decoded.frames) == len(offsets) - 1


def test_a_zero_filled_tail_is_a_torn_tail() -> None:
    data, _ = segment()
    decoded = decode_frames(data + bytes(4096))
    assert (decoded.outcome, decoded.end) == (Outcome.TORN, len(data))
    assert decoded.reason == "zero length word"


def test_a_last_frame_with_zeroed_bytes_is_a_torn_tail() -> None:
    data, offsets = segment()
    torn = data[: offsets[-1] + 8] + bytes(len(data) - offsets[-1] - 8)
    decoded = decode_frames(torn)
    assert (decoded.outcome, decoded.end) == (Outcome.TORN, offsets[-1])


def test_a_last_frame_failing_its_crc_is_a_torn_tail() -> None:
    data, offsets = segment()
    damaged = bytearray(data)
    damaged[-3] ^= 0xFF  # inside the last entry's data
    decoded = decode_frames(bytes(damaged))
    assert (decoded.outcome, decoded.end) == (Outcome.TORN, offsets[-1])
    assert decoded.reason.startswith("crc mismatch")


# --- decoding: corruption -----------------------------------------------------------------


def test_a_crc_mismatch_with_valid_frames_after_it_is_corruption() -> None:
    data, offsets = segment()
    damaged = bytearray(data)
    damaged[offsets[-2] + 20] ^= 0xFF  # inside the second-to-last entry
    decoded = decode_frames(bytes(damaged))
    assert (decoded.outcome, decoded.end) == (Outcome.CORRUPT, offsets[-2])
    assert decoded.reason.startswith("crc mismatch")


def test_a_damaged_length_word_with_valid_frames_after_it_is_corruption() -> None:
    data, offsets = segment()
    damaged = bytearray(data)
    damaged[offsets[2] + 1] ^= 0x01  # the record now claims 256 bytes more than it has
    decoded = decode_frames(bytes(damaged))
    assert (decoded.outcome, decoded.end) == (Outcome.CORRUPT, offsets[2])


def test_zeros_in_the_middle_with_valid_frames_after_them_are_corruption() -> None:
    data, offsets = segment()
    damaged = data[: offsets[2]] + bytes(offsets[3] - offsets[2]) + data[offsets[3] :]
    decoded = decode_frames(damaged)
    assert (decoded.outcome, decoded.end) == (Outcome.CORRUPT, offsets[2])


def test_every_flipped_byte_of_an_earlier_frame_is_corruption_or_a_known_gap() -> None:
    """The CRC covers a record's data, not its type (as in etcd): flipping the type byte
    from ENTRY to another valid type passes the decoder, and the WAL checks the data."""
    data, offsets = segment()
    start, end = offsets[2], offsets[3]
    type_byte = start + 9  # length word, then 08 <type>
    for position in range(start, end):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        decoded = decode_frames(bytes(damaged))
        assert (decoded.outcome, decoded.end) == (Outcome.CORRUPT, start), position
    for flip in (0x01, 0x03, 0x07):  # ENTRY (2) becomes STATE, METADATA, SNAPSHOT
        damaged = bytearray(data)
        damaged[type_byte] ^= flip
        assert decode_frames(bytes(damaged)).outcome is Outcome.CLEAN


def test_a_crc_varint_with_bits_beyond_32_is_refused() -> None:
    """Protobuf's parser truncates a uint32 varint; a damaged high bit must not slip by."""
    data, offsets = segment()
    start = offsets[2]
    assert decode_frames(data).frames[2].record.crc >= 1 << 28  # a 5-byte varint
    crc_last_byte = start + 8 + 7  # after the length word: 08 02 10, then the varint's 5 bytes
    damaged = bytearray(data)
    damaged[crc_last_byte] ^= 0x10
    decoded = decode_frames(bytes(damaged))
    assert (decoded.outcome, decoded.end) == (Outcome.CORRUPT, start)
    assert decoded.reason == "record is not in canonical encoding"


def test_a_crc_record_that_breaks_the_chain_is_refused() -> None:
    encoder = Encoder(crc=1234)
    data = encoder.encode(RecordType.CRC) + encoder.encode(RecordType.ENTRY, entry_data(1))
    decoded = decode_frames(data, prev_crc=5678)
    assert (decoded.outcome, decoded.end) == (Outcome.CORRUPT, 0)
    assert "chain" in decoded.reason


def test_an_unknown_record_type_is_refused() -> None:
    frame = encode_frame(walpb.Record(type=9, crc=chain_crc(b"x", 0), data=b"x"))
    data, _ = segment()
    decoded = decode_frames(frame + data)
    assert (decoded.outcome, decoded.reason) == (Outcome.CORRUPT, "unknown record type 9")
