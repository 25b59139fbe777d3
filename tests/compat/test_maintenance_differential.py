"""Maintenance against the real etcd 3.4 and kv: alarms, the space quota, defrag, snapshots.

Most steps are etcdctl commands (``run_scenario``); the alarm actions etcdctl cannot send
(ACTIVATE) and the Snapshot stream's framing are compared over gRPC with the project's client.

The space quota needs one more normalisation, done here and nowhere else. etcd's backend is
bbolt and kv's is SQLite: the files grow differently, so with the same ``--quota-backend-bytes``
the NOSPACE alarm trips after a different number of puts (with 200000 bytes and 10 kB values:
kv after 13; etcd after 10 to 20, depending on timing, see below). `fill_until_nospace` puts
on each server until a put fails and compares only that failure; `equalise` then deletes keys
so that both servers hold the same keys at the same revision (see its docstring), after which
every later step is compared in full, as everywhere else in this suite.

How many puts a server took is read from the server, not counted from the answers: etcd (and
kv, which makes the same second check: `kv.server.replica.space`) may *apply* the put it
refuses. It checks the quota twice, when the request arrives
(``etcdserver/api/v3rpc/quota.go``) and again when it is applied (``quotaApplierV3`` in
``etcdserver/apply.go``: it applies the put, then answers ``ErrNoSpace`` if the quota was
exceeded), and the backend size both checks read is only updated when the backend commits its
batch, every 100 ms. A put that arrives before a commit and is applied after it passes the
first check, fails the second, takes a revision and is answered with the space error. (Seen
under load: 17 puts answered, 18 keys held at revision 19.)
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.client import KVClient
from tests.compat.etcdctl import EtcdctlResult, etcdctl
from tests.compat.normalise import normalise_result
from tests.compat.scenario import (
    GrpcComparison,
    ScenarioMismatch,
    ServerPair,
    StartPair,
    mismatch_message,
    render_result,
    run_scenario,
)
from tests.compat.servers import Server, ServerOptions

pytestmark = pytest.mark.etcd

NOSPACE_ERROR = "Error: etcdserver: mvcc: database space exceeded"
#: A quota a fresh member passes and a few dozen 10 kB values exceed, on either backend.
QUOTA = ServerOptions(quota_backend_bytes=200_000)
VALUE = "x" * 10_000
MAX_PUTS = 60

NOSPACE = rpc_pb2.AlarmType.NOSPACE
CORRUPT = rpc_pb2.AlarmType.CORRUPT
GET = rpc_pb2.AlarmRequest.GET
ACTIVATE = rpc_pb2.AlarmRequest.ACTIVATE
DEACTIVATE = rpc_pb2.AlarmRequest.DEACTIVATE


def key(n: int) -> str:
    """``k001``...: zero-padded so that key order is number order (for range deletes)."""
    return f"k{n:03}"


def fill_one(server: Server) -> tuple[int, EtcdctlResult]:
    """Put 10 kB values on one server until a put fails: (puts it holds, the failure).

    The puts it holds are ``k001``..``k{p}`` at revision ``p + 1``, where ``p`` is the puts
    answered with success, or one more if the server applied the put it refused (etcd can:
    see the module docstring). Which of the two is read from the server.
    """
    for n in range(1, MAX_PUTS + 1):
        result = etcdctl(server.endpoint, ["put", key(n), VALUE])
        if result.exit_code != 0:
            return puts_held(server, answered=n - 1), normalise_result(result, server)
    pytest.fail(f"{server.label}: {MAX_PUTS} puts of 10 kB did not trip the quota")


def puts_held(server: Server, answered: int) -> int:
    """How many of the puts sent the server holds, after ``answered`` of them succeeded.

    Each put is of a new key, so ``p`` puts held means ``p`` keys at revision ``p + 1``; the
    only put that may be held beyond those answered is the refused one.
    """
    held = etcdctl(server.endpoint, ["get", "k", "--prefix", "--keys-only"])
    assert held.exit_code == 0, held.stderr
    count, revision = held.output.get("count", 0), held.output["header"]["revision"]
    assert count == revision - 1 and count in (answered, answered + 1), (
        f"{server.label}: {answered} puts answered, then {count} keys at revision {revision}"
    )
    return int(count)


def fill_until_nospace(pair: ServerPair) -> tuple[int, int]:
    """Fill both servers past the quota; their failing puts must be answered alike.

    Returns how many puts each server holds when it refuses one (see `fill_one`).
    """
    __tracebackhide__ = True
    reference_puts, reference_failure = fill_one(pair.reference)
    subject_puts, subject_failure = fill_one(pair.subject)
    if reference_failure != subject_failure:
        raise ScenarioMismatch(
            mismatch_message(
                pair,
                "the first put refused past the quota",
                render_result(reference_failure),
                render_result(subject_failure),
            )
        )
    assert (reference_failure.exit_code, reference_failure.stderr) == (1, NOSPACE_ERROR)
    return reference_puts, subject_puts


def equalise(pair: ServerPair, puts: tuple[int, int]) -> int:
    """Bring both servers to the same keys at the same revision; return how many keys remain.

    A server that took ``p`` puts holds ``k001``..``k{p}`` at revision ``p + 1``. With ``hi``
    and ``lo`` puts (``hi > lo``), both keep ``k001``..``k{m}``, ``m = 2*lo - hi - 1``: the
    server with ``hi`` deletes the rest with one range delete (one revision), the one with
    ``lo`` deletes its rest key by key (``hi - lo + 1`` revisions), so both end at revision
    ``hi + 2``. The keys kept were written by the same puts at the same revisions on both, so
    every read of them compares equal. (HashKV still differs: the histories do.)
    """
    reference_puts, subject_puts = puts
    hi, lo = max(puts), min(puts)
    if hi == lo:
        return lo
    kept = 2 * lo - hi - 1
    if kept < 1:
        pytest.fail(f"the quota tripped too far apart to compare (after {puts} puts)")
    for server, count in ((pair.reference, reference_puts), (pair.subject, subject_puts)):
        if count == hi:
            steps = [["del", key(kept + 1), key(hi + 1)]]
        else:
            steps = [["del", key(n)] for n in range(kept + 1, lo + 1)]
        for step in steps:
            result = etcdctl(server.endpoint, step)
            assert result.exit_code == 0, result.stderr
        revision = result.output["header"]["revision"]
        assert revision == hi + 2, f"{server.label}: at revision {revision} after {puts} puts"
    return kept


def revision_after_equalise(puts: tuple[int, int]) -> int:
    return max(puts) + 1 if puts[0] == puts[1] else max(puts) + 2


# --- alarms, defrag and snapshot save on a healthy member -------------------------------------


def test_alarm_list_and_disarm_on_a_healthy_member_print_nothing(pair: ServerPair) -> None:
    """No alarm: ``alarm list`` and ``alarm disarm`` print ``{}`` (no header at all)."""
    r = run_scenario(pair, [["alarm", "list"], ["alarm", "disarm"]])
    assert [(x.exit_code, x.output) for x in r] == [(0, {}), (0, {})]


def test_defrag_prints_finished_defragmenting_the_member(pair: ServerPair) -> None:
    r = run_scenario(pair, [["put", "k", "v"], ["defrag"], ["get", "k"]])
    assert (r[1].exit_code, r[1].output) == (
        0,
        "Finished defragmenting etcd member[<client-endpoint>]",
    )


def test_snapshot_save_writes_the_data_and_its_sha256(pair: ServerPair, tmp_path: Path) -> None:
    """``snapshot save`` succeeds and says where; the file is whole 512-byte blocks of data
    followed by their SHA-256 (the subject runs second, so the file left is the subject's)."""
    path = tmp_path / "saved.db"
    r = run_scenario(pair, [["put", "k", "v"], ["snapshot", "save", str(path)]])
    assert (r[1].exit_code, r[1].output) == (0, f"Snapshot saved at {path}")
    data = path.read_bytes()
    assert len(data) % 512 == 32
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]


# --- the space quota and NOSPACE (see the module docstring) ---------------------------------


def test_past_the_quota_a_put_fails_with_database_space_exceeded(start_pair: StartPair) -> None:
    pair = start_pair(QUOTA)
    fill_until_nospace(pair)
    r = run_scenario(pair, [["put", "another", VALUE], ["put", "", VALUE]])
    # Past the quota even an empty key gets the space error: the quota is checked first.
    # (With a value that cannot fit: how close to the quota a server stops depends on how its
    # file grows -- bbolt in large steps, SQLite by pages -- so a tiny put may still fit in
    # one and not the other. That is not the behaviour under test.)
    assert [(x.exit_code, x.stderr) for x in r] == [(1, NOSPACE_ERROR)] * 2


def test_past_the_quota_alarm_list_and_endpoint_status_show_nospace(
    start_pair: StartPair,
) -> None:
    pair = start_pair(QUOTA)
    equalise(pair, fill_until_nospace(pair))
    r = run_scenario(pair, [["alarm", "list"], ["endpoint", "status"]])
    assert r[0].output == {"alarms": [{"memberID": "<member_id>", "alarm": 1}]}
    assert r[1].output[0]["Status"]["errors"] == ["memberID:<member_id> alarm:NOSPACE "]


def test_while_nospace_is_raised_reads_and_deletes_work_and_puts_fail(
    start_pair: StartPair,
) -> None:
    pair = start_pair(QUOTA)
    kept = equalise(pair, fill_until_nospace(pair))
    r = run_scenario(
        pair,
        [
            ["get", key(1)],
            ["get", "k", "--prefix", "--keys-only"],
            ["del", key(1)],
            ["put", "x", "y"],
            ["get", "", "--prefix", "--keys-only"],
            ["endpoint", "hashkv", f"--rev={kept + 1}"],
        ],
    )
    assert r[0].exit_code == r[1].exit_code == 0
    assert r[2].output["deleted"] == 1
    assert (r[3].exit_code, r[3].stderr) == (1, NOSPACE_ERROR)


def test_disarm_after_compaction_and_defrag_lets_puts_succeed(start_pair: StartPair) -> None:
    """etcd's recovery: free space (delete, compact, defrag), then disarm. The alarm stays
    raised until disarmed, so a put between defrag and disarm still fails."""
    pair = start_pair(QUOTA)
    puts = fill_until_nospace(pair)
    equalise(pair, puts)
    emptied = revision_after_equalise(puts) + 1
    r = run_scenario(
        pair,
        [
            ["del", "k", "--prefix"],
            ["compaction", str(emptied)],
            ["defrag"],
            ["put", "x", "y"],
            ["alarm", "disarm"],
            ["put", "x", "y"],
            ["alarm", "list"],
            ["endpoint", "status"],
        ],
    )
    assert (r[3].exit_code, r[3].stderr) == (1, NOSPACE_ERROR)
    assert r[4].output == {"alarms": [{"memberID": "<member_id>", "alarm": 1}]}
    assert r[5].exit_code == 0 and r[5].output["header"]["revision"] == emptied + 1
    assert r[6].output == {}
    assert "errors" not in r[7].output[0]["Status"]


# --- over gRPC: alarm actions etcdctl cannot send, the Snapshot stream ----------------------


@pytest.fixture
async def cmp(pair: ServerPair) -> AsyncIterator[GrpcComparison]:
    async with GrpcComparison(pair) as comparison:
        yield comparison


async def test_alarm_actions_answer_with_the_alarms_they_concern(cmp: GrpcComparison) -> None:
    """ACTIVATE answers with the alarm (again if raised before); GET lists; DEACTIVATE of an
    alarm not raised answers nothing. No header anywhere."""
    activate = await cmp.step("activate 5", lambda c: c.alarm(ACTIVATE, member_id=5, alarm=NOSPACE))
    await cmp.step("activate 5 again", lambda c: c.alarm(ACTIVATE, member_id=5, alarm=NOSPACE))
    listed = await cmp.step("get", lambda c: c.alarm(GET))
    await cmp.step("get CORRUPT", lambda c: c.alarm(GET, alarm=CORRUPT))
    missing = await cmp.step(
        "deactivate 6", lambda c: c.alarm(DEACTIVATE, member_id=6, alarm=NOSPACE)
    )
    await cmp.step("deactivate 5", lambda c: c.alarm(DEACTIVATE, member_id=5, alarm=NOSPACE))
    assert activate == listed == {"alarms": [{"memberID": "5", "alarm": "NOSPACE"}]}
    assert missing == {}


async def test_a_raised_nospace_alarm_refuses_puts_until_it_is_deactivated(
    cmp: GrpcComparison,
) -> None:
    await cmp.step("put a", lambda c: c.put("a", "1"))
    await cmp.step("raise NOSPACE", lambda c: c.alarm(ACTIVATE, member_id=5, alarm=NOSPACE))
    refused = await cmp.step("put b", lambda c: c.put("b", "1"))
    await cmp.step("get a", lambda c: c.range("a"))
    await cmp.step("delete a", lambda c: c.delete_range("a"))
    await cmp.step("compact", lambda c: c.compact(3))
    await cmp.step("status", lambda c: c.alarm(GET))
    await cmp.step("clear NOSPACE", lambda c: c.alarm(DEACTIVATE, member_id=5, alarm=NOSPACE))
    written = await cmp.step("put b again", lambda c: c.put("b", "1"))
    assert refused == {
        "error": {"code": "RESOURCE_EXHAUSTED", "message": NOSPACE_ERROR.removeprefix("Error: ")}
    }
    assert written["header"]["revision"] == "4"


async def test_a_raised_corrupt_alarm_refuses_writes_with_data_loss_but_serves_reads(
    cmp: GrpcComparison,
) -> None:
    await cmp.step("put a", lambda c: c.put("a", "1"))
    await cmp.step("raise CORRUPT", lambda c: c.alarm(ACTIVATE, member_id=5, alarm=CORRUPT))
    put = await cmp.step("put b", lambda c: c.put("b", "1"))
    await cmp.step("delete a", lambda c: c.delete_range("a"))
    await cmp.step("compact", lambda c: c.compact(2))
    read = await cmp.step("get a", lambda c: c.range("a"))
    assert put == {"error": {"code": "DATA_LOSS", "message": "etcdserver: corrupt cluster"}}
    assert read["count"] == "1"


async def snapshot_framing(server: Server) -> dict[str, Any]:
    """What must hold of a Snapshot stream whatever the backend's size: the shape of it."""
    async with KVClient(server.endpoint) as client:
        messages = [message async for message in client.snapshot()]
    *data, final = messages
    blobs = [message.blob for message in data]
    size = sum(map(len, blobs))
    remaining = [message.remaining_bytes for message in data]
    return {
        "headers": [message.HasField("header") for message in messages].count(True),
        "full blobs but the last": all(len(blob) == 32 * 1024 for blob in blobs[:-1]),
        "remaining = bytes after this blob": remaining
        == [size - sum(map(len, blobs[: i + 1])) for i in range(len(blobs))],
        "data in whole 512-byte blocks": size % 512 == 0,
        "last message": (final.remaining_bytes, len(final.blob)),
        "last blob = sha256 of the data": final.blob == hashlib.sha256(b"".join(blobs)).digest(),
    }


async def test_snapshot_stream_is_32k_blobs_then_the_sha256(pair: ServerPair) -> None:
    for server in (pair.reference, pair.subject):
        for n in range(10):
            assert etcdctl(server.endpoint, ["put", key(n), VALUE]).exit_code == 0
    reference = await snapshot_framing(pair.reference)
    subject = await snapshot_framing(pair.subject)
    assert subject == reference
    assert reference == {
        "headers": 0,
        "full blobs but the last": True,
        "remaining = bytes after this blob": True,
        "data in whole 512-byte blocks": True,
        "last message": (0, 32),
        "last blob = sha256 of the data": True,
    }
