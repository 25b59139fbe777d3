"""Messages and entries written straight to bytes (`kv.server.wire_bytes`): byte for byte what
protobuf writes, and each log entry encoded once for the WAL and every follower."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from kv.api.peerpb import peer_pb2
from kv.api.raftpb import raft_pb2
from kv.raft import Entry, EntryType, Message, MessageType
from kv.server import raft_wire
from kv.server.wire_bytes import (
    ENCODED_BYTES_KEPT,
    ENCODINGS_KEPT,
    EncodedEntry,
    EntryEncodings,
    batch_bytes,
    message_bytes,
)

U64 = st.one_of(
    st.sampled_from([0, 1, 127, 128, 16383, 16384, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1)
)
DATA = st.binary(max_size=300)
ENTRIES = st.builds(Entry, term=U64, index=U64, type=st.sampled_from(EntryType), data=DATA)
MESSAGES = st.builds(
    Message,
    type=st.sampled_from(MessageType),
    to=U64,
    from_=U64,
    term=U64,
    log_term=U64,
    index=U64,
    # Distinct (index, term) pairs: two entries with the same pair are one entry (Log Matching)
    entries=st.lists(ENTRIES, max_size=3, unique_by=lambda e: (e.index, e.term)).map(tuple),
    commit=U64,
    reject=st.booleans(),
    reject_hint=U64,
    context=DATA,
)


@given(ENTRIES)
def test_an_entry_is_encoded_as_protobuf_encodes_it(entry: Entry) -> None:
    expected = raft_wire.entry_to_pb(entry).SerializeToString()
    assert EntryEncodings().encode(entry) == expected


@given(MESSAGES)
def test_a_message_is_encoded_as_protobuf_encodes_it(message: Message) -> None:
    expected = raft_wire.message_to_pb(message).SerializeToString()
    assert message_bytes(message, EntryEncodings()) == expected


def log_matching(messages: list[Message]) -> bool:
    """No two entries of ``messages`` share an index and term but differ: in a Raft log they
    would be one entry (Log Matching), and a batch shares one `EntryEncodings`."""
    seen: dict[tuple[int, int], Entry] = {}
    return all(
        seen.setdefault((entry.index, entry.term), entry) == entry
        for message in messages
        for entry in message.entries
    )


@given(st.lists(MESSAGES, max_size=3))
def test_a_batch_is_encoded_as_protobuf_encodes_it(messages: list[Message]) -> None:
    assume(log_matching(messages))
    wire = peer_pb2.MessageBatch(messages=[raft_wire.message_to_pb(m) for m in messages])
    batch = batch_bytes(messages, EntryEncodings())
    assert batch == wire.SerializeToString()
    decoded = peer_pb2.MessageBatch.FromString(batch)
    assert [raft_wire.message_from_pb(m) for m in decoded.messages] == messages


def test_an_entry_of_the_log_is_encoded_once_for_the_wal_and_each_follower() -> None:
    encodings = EntryEncodings()
    entry = Entry(term=2, index=7, data=b"put")
    [record] = encodings.for_wal([entry])
    to_follower = Message(type=MessageType.APP, to=2, from_=1, term=2, entries=(entry,))
    wire = raft_pb2.Message.FromString(message_bytes(to_follower, encodings))
    assert record == EncodedEntry(7, raft_wire.entry_to_pb(entry).SerializeToString())
    assert encodings.encode(entry) is record.encoded
    assert wire.entries[0].SerializeToString() == record.encoded


def test_a_follower_keeps_the_bytes_an_entry_arrived_in() -> None:
    encodings = EntryEncodings()
    sent = b"\x10\x02\x18\x07\x22\x03put"  # Term 2, Index 7, Data "put"
    encodings.remember(7, 2, sent)
    [record] = encodings.for_wal([Entry(term=2, index=7, data=b"put")])
    assert record.encoded is sent


def test_an_entry_without_an_index_is_not_kept() -> None:
    encodings = EntryEncodings()
    encodings.encode(Entry(data=b"a proposal"))
    assert (
        encodings.encode(Entry(data=b"another"))
        == raft_wire.entry_to_pb(Entry(data=b"another")).SerializeToString()
    )


def test_old_encodings_are_dropped() -> None:
    encodings = EntryEncodings()
    first = Entry(term=1, index=1, data=b"first")
    kept = encodings.encode(first)
    for index in range(2, 2 * ENCODINGS_KEPT + 2):
        encodings.encode(Entry(term=1, index=index))
    assert encodings.encode(first) == kept
    assert encodings.encode(first) is not kept  # encoded again: it was no longer kept


def test_large_entries_are_dropped_by_their_bytes() -> None:
    encodings = EntryEncodings()
    size = ENCODED_BYTES_KEPT // 4
    first = Entry(term=1, index=1, data=bytes(size))
    kept = encodings.encode(first)
    for index in range(2, 10):  # far fewer than ENCODINGS_KEPT entries, twice the bytes
        encodings.encode(Entry(term=1, index=index, data=bytes(size)))
    assert encodings.encode(first) is not kept
