"""Txn over gRPC, kv beside the real etcd: every compare target and result, nested txns,
one-revision writes, and the form and content errors in etcd's order (chapter 6).

Each test sends the same requests through `kv.client.KVClient` to a fresh real etcd and a fresh
subject and compares every response (``MessageToDict``, header ids normalised) or error (code
and exact message). The assertions after a comparison state what etcd does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.client import compare, delete_op, prefix_end, put_op, range_op, txn_op
from tests.compat.scenario import GrpcComparison, ServerPair, StartPair
from tests.compat.servers import ServerOptions

pytestmark = pytest.mark.etcd

# key  create  mod  version   (revisions 2..5; the store ends at revision 5)
#  a      2     4      2      value "a2"
#  b      3     3      1      value "b1"
#  c      5     5      1      value "c1"
SETUP = [(b"a", b"a1"), (b"b", b"b1"), (b"a", b"a2"), (b"c", b"c1")]


@pytest.fixture
async def cmp(pair: ServerPair) -> AsyncIterator[GrpcComparison]:
    async with GrpcComparison(pair) as comparison:
        for key, value in SETUP:
            await comparison.step(f"put {key!r}", lambda c, k=key, v=value: c.put(k, v))
        yield comparison


DUPLICATE = "etcdserver: duplicate key given in txn request"


def error(outcome: dict[str, Any]) -> tuple[str, str]:
    return outcome["error"]["code"], outcome["error"]["message"]


TARGET_OPERANDS: list[tuple[str, list[int | bytes]]] = [
    ("value", [b"a1", b"a2", b"a3", b""]),
    ("version", [1, 2, 3, 0]),
    ("create", [1, 2, 3, 0]),
    ("mod", [3, 4, 5, 0]),
    ("lease", [0, 1, -1]),
]


@pytest.mark.parametrize("target,operands", TARGET_OPERANDS, ids=[t for t, _ in TARGET_OPERANDS])
async def test_every_compare_target_and_result_on_present_and_missing_keys(
    cmp: GrpcComparison, target: str, operands: list[int | bytes]
) -> None:
    """Each target with each relation: a key that exists, one that does not (its numbers
    compare as 0, and a VALUE compare on it is false whatever the relation), and ranges."""
    outcomes = []
    for key in (b"a", b"zz"):
        for result in ("=", "!=", ">", "<"):
            for operand in operands:
                label = f"{target}({key!r}) {result} {operand!r}"
                outcomes.append(
                    await cmp.step(
                        label,
                        lambda c, k=key, r=result, o=operand: c.txn(
                            [compare(k, target, r, o)], [range_op(b"a")], [range_op(b"b")]
                        ),
                    )
                )
    for range_end, name in ((prefix_end(b""), "every key"), (b"b", "[a, b)"), (b"x", "[m, x)")):
        start = b"m" if name == "[m, x)" else b"a"
        for result in ("=", "!=", ">", "<"):
            operand = operands[0]
            await cmp.step(
                f"{target} over {name} {result} {operand!r}",
                lambda c, s=start, e=range_end, r=result, o=operand: c.txn(
                    [compare(s, target, r, o, range_end=e)]
                ),
            )
    if target == "value":
        missing_not_equal = outcomes[4 * len(operands) + len(operands)]  # zz != "a1"
        assert missing_not_equal.get("succeeded") is None  # false: a VALUE compare on no key


async def test_a_target_union_of_another_kind_compares_with_zero(cmp: GrpcComparison) -> None:
    """target VERSION with the operand in ``mod_revision``: etcd reads the version's operand,
    which is unset, so 0."""

    def mismatched(target: str, member: str, value: int) -> Any:
        built = compare(b"a", target, "=", 0)
        setattr(built, member, value)
        return built

    await cmp.step("version = (mod 4)", lambda c: c.txn([mismatched("version", "mod_revision", 4)]))
    await cmp.step("mod > (version 1)", lambda c: c.txn([mismatched("mod", "version", 1)]))
    await cmp.step("create = (lease 2)", lambda c: c.txn([mismatched("create", "lease", 2)]))


async def test_writes_of_one_txn_share_one_revision_and_ranges_see_earlier_writes(
    cmp: GrpcComparison,
) -> None:
    done = await cmp.step(
        "put, range, delete, range, put, range with prev_kv",
        lambda c: c.txn(
            [compare(b"a", "value", "=", b"a2")],
            [
                range_op(b"a", prefix_end(b"")),
                put_op(b"d", b"d1", prev_kv=True),
                range_op(b"d"),
                delete_op(b"b", prev_kv=True),
                range_op(b"a", prefix_end(b""), keys_only=True),
                put_op(b"a", b"a3", prev_kv=True),
                range_op(b"a", revision=5),
                range_op(b"a"),
            ],
        ),
    )
    await cmp.step("the store after", lambda c: c.range(b"\0", b"\0"))
    assert done["succeeded"] is True and done["header"]["revision"] == "6"


async def test_a_delete_that_deletes_nothing_before_any_write_reports_the_old_revision(
    cmp: GrpcComparison,
) -> None:
    await cmp.step(
        "delete missing, put, delete missing",
        lambda c: c.txn(success=[delete_op(b"x"), put_op(b"y", b"1"), delete_op(b"x2")]),
    )


async def test_a_txn_without_writes_keeps_the_revision(cmp: GrpcComparison) -> None:
    empty = await cmp.step("empty txn", lambda c: c.txn())
    await cmp.step("only compares", lambda c: c.txn([compare(b"a", "version", ">", 0)]))
    await cmp.step(
        "failed compare, writes on success only",
        lambda c: c.txn([compare(b"a", "version", "=", 9)], [put_op(b"a", b"x")]),
    )
    await cmp.step("deletes of nothing", lambda c: c.txn(success=[delete_op(b"q", b"r")]))
    await cmp.step("nested, read-only", lambda c: c.txn(success=[txn_op(success=[range_op(b"a")])]))
    after = await cmp.step("revision", lambda c: c.range(b"a"))
    assert empty["header"]["revision"] == after["header"]["revision"] == "5"


async def test_nested_txns_decide_before_any_op_runs(cmp: GrpcComparison) -> None:
    """The nested compare sees ``a`` before the outer put: the failure branch runs."""
    await cmp.step(
        "outer put a, nested compare on a",
        lambda c: c.txn(
            success=[
                put_op(b"a", b"new"),
                txn_op(
                    [compare(b"a", "value", "=", b"new")],
                    [put_op(b"n", b"saw-new")],
                    [put_op(b"n", b"saw-old"), range_op(b"a")],
                ),
                txn_op(failure=[txn_op([compare(b"zz", "create", "=", 0)], [range_op(b"n")])]),
            ]
        ),
    )
    await cmp.step("n", lambda c: c.range(b"n"))


async def test_too_many_operations_and_the_nested_budget(start_pair: StartPair) -> None:
    """--max-txn-ops bounds the longest list; a nested txn gets the budget minus its parent's
    longest list."""
    pair = start_pair(ServerOptions(extra_flags=("--max-txn-ops=4",)))
    async with GrpcComparison(pair) as cmp:
        four = [put_op(f"k{i}", b"v") for i in range(4)]
        await cmp.step("4 puts", lambda c: c.txn(success=four))
        await cmp.step("5 puts", lambda c: c.txn(success=[*four, put_op(b"k9", b"v")]))
        await cmp.step("5 compares", lambda c: c.txn([compare(b"a", "version", ">", 0)] * 5))
        await cmp.step("5 failure ranges", lambda c: c.txn(failure=[range_op(b"a")] * 5))
        nested_2 = txn_op(success=[put_op(b"n1", b"v"), put_op(b"n2", b"v")])
        nested_3 = txn_op(failure=[range_op(b"a")] * 3)
        two = [put_op(b"x", b"v"), put_op(b"y", b"v")]
        await cmp.step("2 outer, nested of 2", lambda c: c.txn(success=[*two[:1], nested_2]))
        fits = await cmp.step(
            "2 outer, nested of 2 (fits)", lambda c: c.txn(success=[two[0], nested_2])
        )
        await cmp.step("3 outer, nested of 2", lambda c: c.txn(success=[*two, nested_2]))
        await cmp.step("1 outer, nested of 3", lambda c: c.txn(success=[nested_3]))
        await cmp.step("2 outer, nested of 3", lambda c: c.txn(success=[two[0], nested_3]))
        await cmp.step(
            "compares count too",
            lambda c: c.txn([compare(b"a", "version", ">", 0)] * 2, [nested_3]),
        )
    assert "error" not in fits


async def test_form_errors_come_in_etcds_order(cmp: GrpcComparison) -> None:
    """Too many ops, then compares' keys, then each op of success then failure, then
    duplicate keys on success, then on failure; whatever branch would run."""
    empty_compare = rpc_compare_without_key()
    await cmp.step("compare without key", lambda c: c.txn([empty_compare]))
    await cmp.step("empty op on failure", lambda c: c.txn(failure=[rpc_empty_op()]))
    await cmp.step("range without key", lambda c: c.txn(success=[range_op(b"")]))
    await cmp.step("put without key", lambda c: c.txn(failure=[put_op(b"", b"v")]))
    await cmp.step("delete without key", lambda c: c.txn(success=[delete_op(b"")]))
    await cmp.step(
        "ignore_value with a value",
        lambda c: c.txn(success=[put_op(b"a", b"v", ignore_value=True)]),
    )
    await cmp.step(
        "ignore_lease with a lease",
        lambda c: c.txn(failure=[put_op(b"a", b"", ignore_lease=True, lease=5)]),
    )
    await cmp.step(
        "duplicate on failure, empty key on success: the empty key first",
        lambda c: c.txn(
            success=[put_op(b"", b"v")], failure=[put_op(b"d", b"1"), put_op(b"d", b"2")]
        ),
    )
    await cmp.step(
        "duplicate on success",
        lambda c: c.txn(success=[put_op(b"d", b"1"), put_op(b"d", b"2")]),
    )
    await cmp.step(
        "compare without key and too many ops: too many ops first",
        lambda c: c.txn([empty_compare] * 129),
    )
    await cmp.step(
        "nested empty op",
        lambda c: c.txn(success=[txn_op(failure=[rpc_empty_op()])]),
    )


async def test_duplicate_keys_in_one_branch(cmp: GrpcComparison) -> None:
    """A key put twice, or put inside a deleted range, in one branch, nested txns included;
    the two branches of one nested txn may put the same key; overlapping deletes are fine."""
    cases = {
        "put a, put a": [put_op(b"a", b"1"), put_op(b"a", b"2")],
        "delete a, put a": [delete_op(b"a"), put_op(b"a", b"1")],
        "put b, delete [a, c)": [put_op(b"b", b"1"), delete_op(b"a", b"c")],
        "put c, delete [a, c)": [put_op(b"c", b"1"), delete_op(b"a", b"c")],
        "put b, delete from a on (range_end \\0)": [put_op(b"b", b"1"), delete_op(b"a", b"\0")],
        "put b, delete every key (\\0, \\0)": [put_op(b"b", b"1"), delete_op(b"\0", b"\0")],
        "put b, delete [c, a) (empty)": [put_op(b"b", b"1"), delete_op(b"c", b"a")],
        "overlapping deletes": [delete_op(b"a", b"c"), delete_op(b"b", b"d"), delete_op(b"b")],
        "range and put of one key": [range_op(b"a"), put_op(b"a", b"1"), range_op(b"a")],
        "put a, nested put a": [put_op(b"a", b"1"), txn_op(success=[put_op(b"a", b"2")])],
        "nested put a on both branches": [
            txn_op([compare(b"a", "version", ">", 0)], [put_op(b"a", b"s")], [put_op(b"a", b"f")])
        ],
        "two nested txns put a": [
            txn_op(success=[put_op(b"a", b"1")]),
            txn_op(failure=[put_op(b"a", b"2")]),
        ],
        "nested delete a, put a": [txn_op(success=[delete_op(b"a")]), put_op(b"a", b"1")],
        "delete a, nested put a": [delete_op(b"a"), txn_op(failure=[put_op(b"a", b"1")])],
        "nested put a, later nested delete a": [
            txn_op(success=[put_op(b"a", b"1")]),
            txn_op(success=[delete_op(b"a")]),
        ],
        "nested delete a, later nested put a": [
            txn_op(success=[delete_op(b"a")]),
            txn_op(success=[put_op(b"a", b"1")]),
        ],
        "nested else puts a, then-branch of a sibling put a": [
            txn_op(success=[put_op(b"a", b"1")]),
            txn_op(success=[put_op(b"b", b"1")], failure=[put_op(b"a", b"2")]),
        ],
    }
    refused = set()
    for label, ops in cases.items():
        outcome = await cmp.step(
            label, lambda c, o=ops: c.txn([compare(b"a", "version", "=", 99)], [], o)
        )
        if "error" in outcome:
            assert error(outcome) == ("INVALID_ARGUMENT", DUPLICATE)
            refused.add(label)
        await cmp.step("(state)", lambda c: c.range(b"\0", b"\0"))
    assert refused == {
        "put a, put a",
        "delete a, put a",
        "put b, delete [a, c)",
        "put a, nested put a",
        "two nested txns put a",
        "nested delete a, put a",
        "delete a, nested put a",
        "nested delete a, later nested put a",
        "nested else puts a, then-branch of a sibling put a",
    }  # a range_end of \0 covers nothing here, and a later sibling's delete is not checked


async def test_content_checks_run_only_on_the_branch_taken(cmp: GrpcComparison) -> None:
    """Lease, ignore_value/ignore_lease and range revisions are checked against the store
    before the txn, only on the chosen branch (nested ones included), puts before ranges."""
    holds = compare(b"a", "version", ">", 0)
    fails = compare(b"a", "version", "=", 0)
    steps = {
        "unknown lease on the branch taken": ([holds], [put_op(b"x", b"1", lease=7)], []),
        "unknown lease on the other branch": ([fails], [put_op(b"x", b"1", lease=7)], []),
        "ignore_value on a missing key": ([], [put_op(b"zz", b"", ignore_value=True)], []),
        "ignore_lease on a present key": ([], [put_op(b"b", b"new", ignore_lease=True)], []),
        "ignore_value on a key the txn creates": (
            [],
            [put_op(b"new", b"1"), txn_op(success=[put_op(b"new", b"", ignore_value=True)])],
            [],
        ),
        "future range revision": ([], [range_op(b"a", revision=9)], []),
        "future range revision after a put": (
            [],
            [put_op(b"q", b"1"), range_op(b"a", revision=6)],
            [],
        ),
        "future range revision on the other branch": ([fails], [range_op(b"a", revision=99)], []),
        "future range and missing key: the put first": (
            [],
            [range_op(b"a", revision=99), put_op(b"zz", b"", ignore_value=True)],
            [],
        ),
        "ignore_value and a lease on a missing key": (
            [],
            [put_op(b"zz", b"", ignore_value=True, lease=3)],
            [],
        ),
        "negative range revision": ([], [range_op(b"a", revision=-1)], []),
        "very negative range revision": ([], [range_op(b"a", revision=-5)], []),
        "nested future range": ([], [txn_op(failure=[range_op(b"a", revision=9)])], []),
    }
    errors = {}
    for label, (compares, success, failure) in steps.items():
        outcome = await cmp.step(label, lambda c, x=compares, s=success, f=failure: c.txn(x, s, f))
        errors[label] = error(outcome)[1] if "error" in outcome else None
    assert errors["unknown lease on the other branch"] is None
    assert errors["ignore_value and a lease on a missing key"] == "etcdserver: key not found"
    assert errors["future range and missing key: the put first"] == "etcdserver: key not found"
    assert errors["negative range revision"] is None  # -1 is not below -1 (no compaction yet)
    assert errors["very negative range revision"] == (
        "etcdserver: mvcc: required revision has been compacted"
    )
    await cmp.step("compact at 4", lambda c: c.compact(4))
    for revision in (3, 4, -1, 0):
        await cmp.step(
            f"range at {revision} after compaction, with a put",
            lambda c, r=revision: c.txn(success=[range_op(b"a", revision=r), put_op(b"p", b"1")]),
        )
    await cmp.step("the store after", lambda c: c.range(b"\0", b"\0"))


async def test_read_only_txns_and_serializable_ranges(cmp: GrpcComparison) -> None:
    await cmp.step(
        "serializable ranges",
        lambda c: c.txn(
            [compare(b"b", "create", "=", 3)],
            [range_op(b"a", serializable=True), range_op(b"b", serializable=True)],
            [range_op(b"c", serializable=True)],
        ),
    )
    await cmp.step(
        "one linearizable range",
        lambda c: c.txn(success=[range_op(b"a", serializable=True), range_op(b"b")]),
    )
    await cmp.step(
        "ranges with sort, limit and count_only",
        lambda c: c.txn(
            success=[
                range_op(b"\0", b"\0", sort_order=2, sort_target=2, limit=2),
                range_op(b"\0", b"\0", count_only=True),
            ]
        ),
    )


def rpc_compare_without_key() -> rpc_pb2.Compare:
    built = compare(b"x", "version", "=", 0)
    built.key = b""
    return built


def rpc_empty_op() -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp()
