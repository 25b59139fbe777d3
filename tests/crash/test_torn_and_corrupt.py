"""Torn tails and corruption, end to end: what ``kv serve`` does with a damaged write-ahead log.

A crash in the middle of an append leaves the last record of the last segment *torn*: kv must
cut it off with a warning naming the file and serve everything else. A damaged record with
valid records after it is *corruption*: data that was durable has changed, so kv must refuse
to start, say which file and offset in one line (no traceback), exit non-zero, and leave the
data dir exactly as it was. ``chapters/02-durability/tests/test_wal.py`` tries every offset on
the `kv.wal.WAL` class; these tests go through a real ``kv serve`` process and its data dir.

Every test starts from a copy of one data dir: ``kv serve`` given 20 puts, then stopped
cleanly. Its log ends with the last put's ENTRY record and the STATE records (Raft's hard
state) written after it; a crash during the last put's append tears that ENTRY and leaves
nothing after it, which is what `tear_last_put` makes.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.raftpb import raft_pb2
from kv.client import KVClient
from kv.wal import Encoder, Frame, Outcome, RecordType, decode_frames
from tests.compat.servers import Server
from tests.crash.harness import FRESH_CONNECTION

WRITES = 20
START_DEADLINE = 20.0


@dataclass(frozen=True, slots=True)
class Write:
    key: bytes
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class Pristine:
    """A data dir after ``WRITES`` acknowledged puts and a clean stop."""

    data_dir: Path
    writes: tuple[Write, ...]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    server = Server("kv", tmp_path_factory.mktemp("pristine"))
    server.start()
    try:
        writes = asyncio.run(_write(server.endpoint))
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode == 0, server.log_tail()
    return Pristine(server.data_dir, writes)


async def _write(endpoint: str) -> tuple[Write, ...]:
    writes = []
    async with KVClient(endpoint, options=FRESH_CONNECTION) as client:
        for i in range(WRITES):
            key, value = f"torn/k{i % 6}".encode(), f"v{i}".encode()
            response = await client.put(key, value)
            writes.append(Write(key, value, response.header.revision))
    return tuple(writes)


@pytest.fixture
def member(tmp_path: Path, pristine: Pristine) -> Iterator[Server]:
    """A server (not started) whose data dir is a fresh copy of the pristine one."""
    server = Server("kv", tmp_path / "kv")
    shutil.copytree(pristine.data_dir, server.data_dir)
    yield server
    server.kill()


def the_segment(server: Server) -> Path:
    (segment,) = sorted((server.data_dir / "member" / "wal").glob("*.wal"))
    return segment


def frames(segment: Path) -> tuple[Frame, ...]:
    return decode_frames(segment.read_bytes()).frames


def last_entry_frame(segment: Path) -> Frame:
    """The last ENTRY record: the last put's (STATE records may follow it)."""
    return [frame for frame in frames(segment) if frame.type is RecordType.ENTRY][-1]


def put_of(frame: Frame) -> rpc_pb2.PutRequest:
    """The put that an ENTRY record carries."""
    assert frame.type is RecordType.ENTRY
    entry = raft_pb2.Entry.FromString(frame.record.data)
    return InternalRaftRequest.FromString(entry.Data).put


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def log_lines(server: Server, level: str) -> list[str]:
    """The lines of ``server``'s log at ``level`` (``W``, ``C``: etcd's one-letter levels)."""
    return [line for line in server.log_path.read_text().splitlines() if f" {level} | " in line]


async def read_all(server: Server) -> tuple[int, dict[bytes, bytes]]:
    async with KVClient(server.endpoint, options=FRESH_CONNECTION) as client:
        response = await client.range(b"\0", b"\0")
    return response.header.revision, {kv.key: kv.value for kv in response.kvs}


async def check_served(server: Server, writes: tuple[Write, ...], *, last_may_be_gone: bool) -> int:
    """Every write is there (at its revision too); the last one may be missing. The revision."""
    revision, keys = await read_all(server)
    *earlier, last = writes
    kept = list(writes)
    if last_may_be_gone and revision == last.revision - 1:
        kept = earlier
    else:
        assert revision == last.revision, f"revision {revision}, {last} was acknowledged"
    expected = {write.key: write.value for write in kept}
    assert keys == expected
    async with KVClient(server.endpoint, options=FRESH_CONNECTION) as client:
        for write in kept:
            kv = await client.get(write.key, revision=write.revision)
            assert kv is not None and (kv.value, kv.mod_revision) == (write.value, write.revision)
    return revision


# --- torn tails ------------------------------------------------------------------------------

#: Where to cut the last put's record ``[offset, end)``: always inside it, never on its
#: boundary.
CUTS: dict[str, Callable[[Frame], int]] = {
    "one byte of it": lambda f: f.offset + 1,
    "most of its length word": lambda f: f.offset + 7,
    "its length word": lambda f: f.offset + 8,
    "half of it": lambda f: (f.offset + f.end) // 2,
    "all but its last byte": lambda f: f.end - 1,
}


def tear_last_put(segment: Path, cut: Callable[[Frame], int]) -> Frame:
    """Cut the segment inside the last put's record (dropping what follows); return it."""
    last = last_entry_frame(segment)
    size = cut(last)
    assert last.offset < size < last.end
    segment.write_bytes(segment.read_bytes()[:size])
    return last


def assert_repaired(server: Server, segment: Path, kept: bytes) -> None:
    """A warning named the file and the offset; the log keeps ``kept`` and reads back clean."""
    offset = len(kept)
    warnings = [line for line in log_lines(server, "W") if "torn tail" in line]
    assert any(str(segment) in line and f"offset {offset}" in line for line in warnings), (
        f"no warning naming {segment} and offset {offset}:\n{server.log_tail(30)}"
    )
    data = segment.read_bytes()
    assert data[:offset] == kept
    decoded = decode_frames(data)
    assert decoded.outcome is Outcome.CLEAN, decoded.reason
    # Whatever kv wrote after the repair starts where the torn record started.
    assert any(frame.end == offset for frame in decoded.frames)


@pytest.mark.parametrize("cut", CUTS.values(), ids=CUTS.keys())
async def test_a_torn_last_record_is_cut_off_with_a_warning(
    member: Server, pristine: Pristine, cut: Callable[[Frame], int]
) -> None:
    segment = the_segment(member)
    original = segment.read_bytes()
    last = tear_last_put(segment, cut)
    assert put_of(last).value == pristine.writes[-1].value  # the record of the last put

    member.start()

    assert_repaired(member, segment, original[: last.offset])
    await check_served(member, pristine.writes, last_may_be_gone=True)


async def test_a_zero_filled_last_record_is_cut_off_with_a_warning(
    member: Server, pristine: Pristine
) -> None:
    """The file grew but the record's data never landed: zeros where the last record was."""
    segment = the_segment(member)
    data = segment.read_bytes()
    last = frames(segment)[-1]
    segment.write_bytes(data[: last.offset] + bytes(last.end - last.offset))

    member.start()

    assert_repaired(member, segment, data[: last.offset])
    await check_served(member, pristine.writes, last_may_be_gone=True)


async def test_a_torn_append_that_was_never_acknowledged_is_dropped_and_the_member_goes_on(
    member: Server, pristine: Pristine
) -> None:
    """What a crash really tears: an append after the last fsync, never applied or answered.

    The record is made as kv makes them (the next index, chained to the log's CRC) and half of
    it is appended. After the repair the member takes writes and restarts as usual.
    """
    segment = the_segment(member)
    decoded = decode_frames(segment.read_bytes())
    last_entry = raft_pb2.Entry.FromString(last_entry_frame(segment).record.data)
    request = InternalRaftRequest(put=rpc_pb2.PutRequest(key=b"torn/never", value=b"never"))
    entry = raft_pb2.Entry(
        Term=last_entry.Term,
        Index=last_entry.Index + 1,
        Type=raft_pb2.EntryNormal,
        Data=request.SerializeToString(),
    )
    frame = Encoder(decoded.crc).encode(RecordType.ENTRY, entry.SerializeToString())
    original = segment.read_bytes()
    with segment.open("ab") as file:
        file.write(frame[: len(frame) // 2])

    member.start()

    assert_repaired(member, segment, original)
    revision = await check_served(member, pristine.writes, last_may_be_gone=False)
    async with KVClient(member.endpoint, options=FRESH_CONNECTION) as client:
        after = await client.put(b"torn/after", b"after")
    assert after.header.revision == revision + 1
    member.stop()
    member.start()
    assert await read_all(member) == (
        revision + 1,
        {w.key: w.value for w in pristine.writes} | {b"torn/after": b"after"},
    )


async def test_after_cutting_off_an_applied_last_record_the_member_goes_on(
    member: Server, pristine: Pristine
) -> None:
    """The torn record was the last put, which the backend holds: writes and restarts go on."""
    tear_last_put(the_segment(member), CUTS["half of it"])
    member.start()
    revision, keys = await read_all(member)
    async with KVClient(member.endpoint, options=FRESH_CONNECTION) as client:
        after = await client.put(b"torn/after", b"after")
    assert after.header.revision == revision + 1
    member.stop()

    member.launch()
    try:
        member.wait_ready(START_DEADLINE)
    except Exception as error:
        raise AssertionError(f"the member did not restart: {error}") from error
    assert await read_all(member) == (revision + 1, keys | {b"torn/after": b"after"})


# --- corruption ------------------------------------------------------------------------------

#: Where to flip a byte in an earlier record ``[offset, end)``.
FLIPS: dict[str, Callable[[Frame], int]] = {
    "its length word": lambda f: f.offset,
    "the middle of the record": lambda f: (f.offset + 8 + f.end) // 2,
    "the last byte of the record": lambda f: f.offset + 8 + len(f.record.SerializeToString()) - 1,
}


@pytest.mark.parametrize("flip", FLIPS.values(), ids=FLIPS.keys())
def test_a_flipped_byte_in_an_earlier_record_is_refused_and_changes_nothing(
    member: Server, pristine: Pristine, flip: Callable[[Frame], int]
) -> None:
    segment = the_segment(member)
    victims = [frame for frame in frames(segment) if frame.type is RecordType.ENTRY]
    victim = victims[len(victims) // 2]
    data = bytearray(segment.read_bytes())
    data[flip(victim)] ^= 0x01
    segment.write_bytes(bytes(data))
    before = files(member.data_dir)

    member.launch()
    assert member.process is not None
    try:
        code = member.process.wait(START_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"kv serve did not refuse a corrupt log:\n{member.log_tail(30)}")

    log = member.log_path.read_text()
    assert code == 1, f"exit code {code}:\n{member.log_tail(30)}"
    assert "Traceback" not in log, log
    errors = log_lines(member, "C")
    assert len(errors) == 1, log
    assert str(segment) in errors[0] and f"offset {victim.offset}" in errors[0], errors[0]
    assert files(member.data_dir) == before
