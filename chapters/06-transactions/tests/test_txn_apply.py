"""The applier's transactions on a store (chapter 6): compares, branches, one revision.

Each test builds a small store, applies one `TxnRequest` with `apply_txn` and states what etcd
does; the same rules are compared with the real etcd in ``tests/compat/test_txn_*``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.client import compare, delete_op, prefix_end, put_op, range_op, txn_op, txn_request
from kv.mvcc import Store
from kv.server import errors
from kv.server.applied.txn import apply_txn, decide, is_read_only, is_serializable
from kv.server.errors import EtcdError


@pytest.fixture
def store() -> Store:
    """a=a2 (created 2, modified 4, version 2), b=b1 (3, 3, 1); the store is at revision 4."""
    store = Store()
    for key, value in ((b"a", b"a1"), (b"b", b"b1"), (b"a", b"a2")):
        store.put(key, value)
    return store


def apply(
    store: Store,
    *compares: rpc_pb2.Compare,
    success: Sequence[rpc_pb2.RequestOp] = (),
    failure: Sequence[rpc_pb2.RequestOp] = (),
) -> rpc_pb2.TxnResponse:
    return apply_txn(store, txn_request(compares, success, failure))


def test_a_holding_compare_runs_the_success_branch(store: Store) -> None:
    done = apply(store, compare("a", "value", "=", "a2"), success=[put_op("c", "1")])
    assert done.succeeded and store.range(b"c").kvs[0].value == b"1"


def test_a_failing_compare_runs_the_failure_branch(store: Store) -> None:
    done = apply(store, compare("a", "value", "=", "a1"), failure=[put_op("c", "2")])
    assert not done.succeeded and store.range(b"c").kvs[0].value == b"2"


def test_every_compare_must_hold(store: Store) -> None:
    done = apply(store, compare("a", "version", "=", 2), compare("b", "mod", ">", 3))
    assert not done.succeeded


@pytest.mark.parametrize(
    ("target", "result", "operand", "holds"),
    [
        ("version", "=", 2, True),
        ("version", ">", 1, True),
        ("create", "=", 2, True),
        ("create", "<", 2, False),
        ("mod", "=", 4, True),
        ("mod", "!=", 4, False),
        ("lease", "=", 0, True),
        ("value", ">", "a1", True),
        ("value", "<", "a1", False),
    ],
)
def test_each_target_compares_its_field(
    store: Store, target: str, result: str, operand: int | str, holds: bool
) -> None:
    assert apply(store, compare("a", target, result, operand)).succeeded is holds


def test_a_missing_key_compares_as_zero_so_create_revision_0_means_absent(store: Store) -> None:
    assert apply(store, compare("nope", "create", "=", 0)).succeeded
    assert apply(store, compare("nope", "version", "<", 1)).succeeded


def test_a_value_compare_on_a_missing_key_is_false_even_not_equal(store: Store) -> None:
    assert not apply(store, compare("nope", "value", "!=", "x")).succeeded
    assert not apply(store, compare("nope", "value", "=", "")).succeeded


def test_a_compare_with_range_end_must_hold_for_every_key(store: Store) -> None:
    every = prefix_end(b"")
    assert apply(store, compare("a", "version", ">", 0, range_end=every)).succeeded
    assert not apply(store, compare("a", "version", ">", 1, range_end=every)).succeeded
    assert apply(store, compare("x", "create", "=", 0, range_end="z")).succeeded  # no key


def test_all_writes_of_a_txn_share_one_new_revision(store: Store) -> None:
    done = apply(store, success=[put_op("c", "1"), delete_op("b"), put_op("a", "a3")])
    assert done.header.revision == store.current_revision == 5
    assert [kv.mod_revision for kv in store.range(b"a", b"z").kvs] == [5, 5]
    assert [r.response_put.header.revision for r in (done.responses[0], done.responses[2])] == [
        5,
        5,
    ]


def test_a_txn_that_writes_nothing_keeps_the_revision(store: Store) -> None:
    done = apply(store, compare("a", "version", "=", 9), success=[put_op("c", "1")])
    assert done.header.revision == store.current_revision == 4
    assert apply(store, success=[delete_op("nope")]).header.revision == 4


def test_ranges_see_the_earlier_writes_of_the_same_txn(store: Store) -> None:
    done = apply(store, success=[range_op("c"), put_op("c", "1"), range_op("c")])
    before, after = done.responses[0].response_range, done.responses[2].response_range
    assert before.count == 0 and before.header.revision == 4
    assert after.kvs[0].value == b"1" and after.header.revision == 5


def test_a_delete_before_any_write_that_deletes_nothing_reports_the_old_revision(
    store: Store,
) -> None:
    done = apply(store, success=[delete_op("nope"), put_op("c", "1"), delete_op("nope2")])
    revisions = [r.WhichOneof("response") for r in done.responses]
    assert revisions == ["response_delete_range", "response_put", "response_delete_range"]
    assert done.responses[0].response_delete_range.header.revision == 4
    assert done.responses[2].response_delete_range.header.revision == 5


def test_prev_kv_of_puts_and_deletes(store: Store) -> None:
    done = apply(store, success=[put_op("a", "a3", prev_kv=True), delete_op("b", prev_kv=True)])
    assert done.responses[0].response_put.prev_kv.value == b"a2"
    assert done.responses[1].response_delete_range.prev_kvs[0].value == b"b1"


def test_nested_compares_are_decided_before_any_op_runs(store: Store) -> None:
    nested = txn_op([compare("a", "value", "=", "a3")], [put_op("n", "new")], [put_op("n", "old")])
    done = apply(store, success=[put_op("a", "a3"), nested])
    assert not done.responses[1].response_txn.succeeded
    assert store.range(b"n").kvs[0].value == b"old"


def test_a_nested_txn_answers_with_an_empty_header(store: Store) -> None:
    done = apply(store, success=[txn_op(success=[put_op("n", "1")])])
    inner = done.responses[0].response_txn
    assert inner.HasField("header") and inner.header == rpc_pb2.ResponseHeader()
    assert inner.responses[0].response_put.header.revision == 5


def test_decide_returns_the_nested_decisions_of_the_branch_taken(store: Store) -> None:
    request = txn_request(
        [compare("a", "version", "=", 2)],
        [txn_op([compare("b", "version", "=", 9)]), txn_op()],
        [txn_op()],
    )
    decision = decide(store, request)
    assert decision.succeeded and [d.succeeded for d in decision.nested] == [False, True]


def test_content_checks_refuse_before_anything_is_written(store: Store) -> None:
    cases = [
        ([put_op("c", "1"), put_op("d", "", ignore_value=True)], errors.KEY_NOT_FOUND),
        ([put_op("c", "1", lease=7)], errors.LEASE_NOT_FOUND),
        ([put_op("c", "1"), range_op("a", revision=5)], "future"),
    ]
    for ops, expected in cases:
        with pytest.raises(EtcdError) as raised:
            apply(store, success=ops)
        assert raised.value == expected or expected in raised.value.message
        assert store.current_revision == 4 and not store.range(b"c").kvs


def test_content_checks_skip_the_branch_not_taken(store: Store) -> None:
    done = apply(store, compare("a", "version", "=", 2), failure=[put_op("c", "1", lease=7)])
    assert done.succeeded


def test_a_range_at_a_compacted_revision_fails_the_whole_txn(store: Store) -> None:
    store.compact(3)
    with pytest.raises(EtcdError, match="compacted"):
        apply(store, success=[range_op("a", revision=2), put_op("z", "1")])
    assert store.current_revision == 4
    assert apply(store, success=[range_op("a", revision=3)]).responses[0].response_range.count


def test_a_negative_range_revision_is_compacted_below_the_compaction_revision(
    store: Store,
) -> None:
    assert apply(store, success=[range_op("a", revision=-1)]).succeeded  # -1 is not below -1
    with pytest.raises(EtcdError, match="compacted"):
        apply(store, success=[range_op("a", revision=-2)])


def test_read_only_and_serializable_txns_are_recognised() -> None:
    linearizable = txn_request(success=[range_op("a")], failure=[range_op("b")])
    serializable = txn_request(success=[range_op("a", serializable=True)])
    assert is_read_only(linearizable) and not is_serializable(linearizable)
    assert is_read_only(serializable) and is_serializable(serializable)
    assert not is_read_only(txn_request(success=[txn_op()]))
    assert is_read_only(txn_request()) and is_serializable(txn_request())
