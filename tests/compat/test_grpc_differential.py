"""Range/Put/DeleteRange/Compact fields etcdctl 3.4 cannot send, compared over gRPC.

The requests go through the project's own client, `kv.client.KVClient`, to both servers. Each
test sends the same requests to a fresh real etcd and a fresh subject and compares every
response (``MessageToDict``, header IDs normalised) or error (gRPC code and exact message). The
assertions after the comparison state what etcd does, so each test reads as a specification.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from kv.api.etcdserverpb import rpc_pb2
from tests.compat.scenario import Call, GrpcComparison, ServerPair

pytestmark = pytest.mark.etcd

RangeRequest = rpc_pb2.RangeRequest
EVERY_KEY = (b"\0", b"\0")  # key and range_end both \0: the whole key space

# key  create  mod  version      (revisions 2..7; the store ends at revision 7)
#  a      2     6      2
#  b      3     3      1
#  c      4     4      1
#  d      5     5      1
#  e      7     7      1
WRITES = [b"a", b"b", b"c", b"d", b"a", b"e"]


@pytest.fixture
async def cmp(pair: ServerPair) -> AsyncIterator[GrpcComparison]:
    async with GrpcComparison(pair) as comparison:
        yield comparison


def put_call(key: bytes, value: bytes) -> Call:
    return lambda c: c.put(key, value)


def hash_call(revision: int) -> Call:
    return lambda c: c.hash_kv(revision)


async def write_data(cmp: GrpcComparison) -> None:
    for key in WRITES:
        await cmp.step(f"put {key!r}", put_call(key, b"v" + key))


def keys(outcome: dict[str, Any]) -> list[str]:
    """The keys of a Range outcome, decoded."""
    return [base64.b64decode(kv["key"]).decode() for kv in outcome.get("kvs", [])]


def error(outcome: dict[str, Any]) -> tuple[str, str]:
    return outcome["error"]["code"], outcome["error"]["message"]


async def test_count_only_returns_the_count_without_pairs(cmp: GrpcComparison) -> None:
    """count_only: ``count`` of the whole range, no kvs, no ``more`` even with a limit."""
    await write_data(cmp)
    every = await cmp.step("count_only every key", lambda c: c.range(*EVERY_KEY, count_only=True))
    limited = await cmp.step(
        "count_only limit 2", lambda c: c.range(*EVERY_KEY, count_only=True, limit=2)
    )
    await cmp.step("count_only one key", lambda c: c.range(b"a", count_only=True))
    await cmp.step("count_only missing key", lambda c: c.range(b"zz", count_only=True))
    old = await cmp.step(
        "count_only at revision 4", lambda c: c.range(*EVERY_KEY, count_only=True, revision=4)
    )
    assert every["count"] == limited["count"] == "5"
    assert "kvs" not in limited and "more" not in limited
    assert old["count"] == "3" and old["header"]["revision"] == "7"


async def test_limit_returns_more_and_counts_the_whole_range(cmp: GrpcComparison) -> None:
    """limit N: at most N pairs, ``more`` when cut, ``count`` = every key in the range."""
    await write_data(cmp)
    cut = await cmp.step("limit 2", lambda c: c.range(*EVERY_KEY, limit=2))
    await cmp.step("limit 5", lambda c: c.range(*EVERY_KEY, limit=5))
    await cmp.step("limit -3", lambda c: c.range(*EVERY_KEY, limit=-3, keys_only=True))
    await cmp.step("limit 1 keys_only", lambda c: c.range(b"b", b"e", limit=1, keys_only=True))
    assert keys(cut) == ["a", "b"] and cut["more"] is True and cut["count"] == "5"


async def test_mod_revision_filters_select_pairs_but_count_ignores_them(
    cmp: GrpcComparison,
) -> None:
    """min/max_mod_revision filter the pairs after the range is read; ``count`` is unfiltered."""
    await write_data(cmp)
    at_least_6 = await cmp.step("min_mod 6", lambda c: c.range(*EVERY_KEY, min_mod_revision=6))
    at_most_4 = await cmp.step("max_mod 4", lambda c: c.range(*EVERY_KEY, max_mod_revision=4))
    await cmp.step(
        "min_mod 4 max_mod 5",
        lambda c: c.range(*EVERY_KEY, min_mod_revision=4, max_mod_revision=5),
    )
    await cmp.step("min_mod 5 limit 1", lambda c: c.range(*EVERY_KEY, min_mod_revision=5, limit=1))
    await cmp.step("min_mod 7 limit 1", lambda c: c.range(*EVERY_KEY, min_mod_revision=7, limit=1))
    await cmp.step(
        "min_mod 6 count_only", lambda c: c.range(*EVERY_KEY, min_mod_revision=6, count_only=True)
    )
    await cmp.step("min_mod 8 (none)", lambda c: c.range(*EVERY_KEY, min_mod_revision=8))
    assert keys(at_least_6) == ["a", "e"] and at_least_6["count"] == "5"
    assert keys(at_most_4) == ["b", "c"]


async def test_create_revision_filters_select_pairs_but_count_ignores_them(
    cmp: GrpcComparison,
) -> None:
    """min/max_create_revision filter on the generation's create revision."""
    await write_data(cmp)
    at_most_3 = await cmp.step("max_create 3", lambda c: c.range(*EVERY_KEY, max_create_revision=3))
    await cmp.step("min_create 5", lambda c: c.range(*EVERY_KEY, min_create_revision=5))
    await cmp.step(
        "min_create 3 max_create 4 keys_only",
        lambda c: c.range(*EVERY_KEY, min_create_revision=3, max_create_revision=4, keys_only=True),
    )
    await cmp.step(
        "min_create 3 at revision 5",
        lambda c: c.range(*EVERY_KEY, min_create_revision=3, revision=5),
    )
    assert keys(at_most_3) == ["a", "b"] and at_most_3["count"] == "5"


async def test_filters_combine_with_sort_and_limit(cmp: GrpcComparison) -> None:
    """Filtering, then sorting, then the limit: the server reads the whole range first."""
    await write_data(cmp)
    newest = await cmp.step(
        "min_create 3, sort MOD DESCEND, limit 2",
        lambda c: c.range(
            *EVERY_KEY,
            min_create_revision=3,
            sort_target=RangeRequest.MOD,
            sort_order=RangeRequest.DESCEND,
            limit=2,
        ),
    )
    await cmp.step(
        "max_mod 6, sort VERSION DESCEND",
        lambda c: c.range(
            *EVERY_KEY,
            max_mod_revision=6,
            sort_target=RangeRequest.VERSION,
            sort_order=RangeRequest.DESCEND,
        ),
    )
    assert keys(newest) == ["e", "d"]


@pytest.mark.parametrize("target", ["VERSION", "CREATE", "MOD", "VALUE"])
async def test_sort_target_without_order_sorts_ascending(cmp: GrpcComparison, target: str) -> None:
    """A sort target other than KEY with sort_order NONE sorts ascending."""
    await write_data(cmp)
    sort_target = cast(rpc_pb2.RangeRequest.SortTarget, RangeRequest.SortTarget.Value(target))
    await cmp.step(
        f"sort_target {target}, order NONE",
        lambda c: c.range(*EVERY_KEY, sort_target=sort_target, keys_only=True),
    )


async def test_out_of_range_sort_order_is_ignored(cmp: GrpcComparison) -> None:
    """etcd 3.4 does not validate sort_order: an unknown value leaves the pairs in key order.

    (Not tested: an unknown sort_target with order NONE makes etcd 3.4.23 panic.)
    """
    await write_data(cmp)
    bogus = cast(rpc_pb2.RangeRequest.SortOrder, 7)
    result = await cmp.step(
        "sort_order 7, target VERSION",
        lambda c: c.range(
            *EVERY_KEY, sort_order=bogus, sort_target=RangeRequest.VERSION, keys_only=True
        ),
    )
    assert keys(result) == ["a", "b", "c", "d", "e"]


async def test_put_ignore_value_and_ignore_lease_errors(cmp: GrpcComparison) -> None:
    """ignore_value with a value: ``value is provided``; ignore_lease with a lease: ``lease is
    provided``; either on a missing key: ``key not found`` (all InvalidArgument). A valid
    ignore_value put keeps the value and bumps version and revision."""
    await write_data(cmp)
    steps = {
        "ignore_value with value": lambda c: c.put(b"a", b"x", ignore_value=True),
        "ignore_value on missing key": lambda c: c.put(b"zz", b"", ignore_value=True),
        "ignore_value with value on missing key": lambda c: c.put(b"zz", b"x", ignore_value=True),
        "ignore_lease with lease": lambda c: c.put(b"a", b"x", lease=5, ignore_lease=True),
        "ignore_lease on missing key": lambda c: c.put(b"zz", b"x", ignore_lease=True),
        "unknown lease": lambda c: c.put(b"a", b"x", lease=5),
    }
    outcomes = [await cmp.step(label, call) for label, call in steps.items()]
    kept = await cmp.step(
        "ignore_value on existing key", lambda c: c.put(b"a", b"", ignore_value=True, prev_kv=True)
    )
    await cmp.step("ignore_lease on existing key", lambda c: c.put(b"b", b"w", ignore_lease=True))
    after = await cmp.step("get a and b", lambda c: c.range(b"a", b"c"))
    assert [error(o) for o in outcomes] == [
        ("INVALID_ARGUMENT", "etcdserver: value is provided"),
        ("INVALID_ARGUMENT", "etcdserver: key not found"),
        ("INVALID_ARGUMENT", "etcdserver: value is provided"),
        ("INVALID_ARGUMENT", "etcdserver: lease is provided"),
        ("INVALID_ARGUMENT", "etcdserver: key not found"),
        ("NOT_FOUND", "etcdserver: requested lease not found"),
    ]
    assert kept["header"]["revision"] == "8"
    assert after["kvs"][0]["version"] == "3" and after["kvs"][0]["value"] == "dmE="  # b"va"


async def test_range_end_nul_reads_from_key_and_nul_nul_reads_everything(
    cmp: GrpcComparison,
) -> None:
    """range_end ``\\0``: every key >= key; key and range_end both ``\\0``: every key."""
    await write_data(cmp)
    everything = await cmp.step("key \\0, range_end \\0", lambda c: c.range(b"\0", b"\0"))
    from_c = await cmp.step("key c, range_end \\0", lambda c: c.range(b"c", b"\0", keys_only=True))
    deleted = await cmp.step("delete \\0..\\0", lambda c: c.delete_range(b"\0", b"\0"))
    await cmp.step("read after delete", lambda c: c.range(b"\0", b"\0"))
    assert keys(everything) == ["a", "b", "c", "d", "e"]
    assert keys(from_c) == ["c", "d", "e"]
    assert deleted["deleted"] == "5" and deleted["header"]["revision"] == "8"


async def test_range_end_not_above_key_selects_nothing(cmp: GrpcComparison) -> None:
    """range_end < key (or == key) is an empty range: no pairs, no error, deletes nothing."""
    await write_data(cmp)
    below = await cmp.step("range c..b", lambda c: c.range(b"c", b"b"))
    await cmp.step("range c..c", lambda c: c.range(b"c", b"c"))
    await cmp.step("count_only c..b", lambda c: c.range(b"c", b"b", count_only=True))
    deleted = await cmp.step("delete c..b", lambda c: c.delete_range(b"c", b"b", prev_kv=True))
    assert "kvs" not in below and "count" not in below
    assert "deleted" not in deleted and deleted["header"]["revision"] == "7"


async def test_empty_key_is_rejected_even_with_a_range_end(cmp: GrpcComparison) -> None:
    """An empty key is InvalidArgument ``key is not provided`` for Range, Put and DeleteRange."""
    outcomes = [
        await cmp.step("range '' .. b", lambda c: c.range(b"", b"b")),
        await cmp.step("range '' .. \\0", lambda c: c.range(b"", b"\0")),
        await cmp.step("put ''", lambda c: c.put(b"", b"v")),
        await cmp.step("delete ''", lambda c: c.delete_range(b"")),
    ]
    assert {error(o) for o in outcomes} == {("INVALID_ARGUMENT", "etcdserver: key is not provided")}


async def test_compact_revision_zero_is_accepted_once(cmp: GrpcComparison) -> None:
    """Compact(0) on a never-compacted store succeeds (0 > -1); a second Compact(0) or a
    negative revision is then compacted; HashKV reports compact_revision 0."""
    await write_data(cmp)
    first = await cmp.step("compact 0", lambda c: c.compact(0))
    again = await cmp.step("compact 0 again", lambda c: c.compact(0))
    negative = await cmp.step("compact -1", lambda c: c.compact(-1))
    hashed = await cmp.step("hash_kv", lambda c: c.hash_kv())
    await cmp.step("range at revision 1", lambda c: c.range(*EVERY_KEY, revision=1))
    assert "error" not in first
    compacted = ("OUT_OF_RANGE", "etcdserver: mvcc: required revision has been compacted")
    assert error(again) == error(negative) == compacted
    assert hashed.get("compact_revision", "0") == "0"


async def test_hash_kv_at_each_revision_after_physical_compaction(cmp: GrpcComparison) -> None:
    """HashKV(rev) over a history with overwrites and deletes, before and after compaction."""
    await write_data(cmp)
    await cmp.step("delete b", lambda c: c.delete_range(b"b"))
    await cmp.step("put b", lambda c: c.put(b"b", b"again"))
    for rev in range(1, 10):
        await cmp.step(f"hash_kv {rev}", hash_call(rev))
    await cmp.step("compact 6 physical", lambda c: c.compact(6, physical=True))
    for rev in range(5, 10):
        await cmp.step(f"hash_kv {rev} after compaction", hash_call(rev))
