"""A txn's form, checked on both branches before it is proposed (chapter 6), in etcd's order."""

from __future__ import annotations

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.client import compare, delete_op, put_op, range_op, txn_op, txn_request
from kv.server import errors
from kv.server.errors import EtcdError
from kv.server.requests.validate import check_txn


def refusal(request: rpc_pb2.TxnRequest, max_txn_ops: int = 128) -> EtcdError | None:
    try:
        check_txn(request, max_txn_ops)
    except EtcdError as error:
        return error
    return None


def test_the_longest_list_is_bounded_by_max_txn_ops() -> None:
    assert refusal(txn_request(success=[put_op(f"k{i}", "v") for i in range(4)]), 4) is None
    assert refusal(txn_request(failure=[range_op("a")] * 5), 4) == errors.TOO_MANY_OPS
    assert refusal(txn_request([compare("a", "version", "=", 0)] * 5), 4) == errors.TOO_MANY_OPS


def test_a_nested_txn_gets_the_budget_left_after_its_parents_longest_list() -> None:
    nested = txn_op(success=[put_op("n1", "v"), put_op("n2", "v")])
    assert refusal(txn_request(success=[put_op("x", "v"), nested]), 4) is None
    assert (
        refusal(
            txn_request(success=[put_op("x", "v"), put_op("y", "v"), put_op("z", "v"), nested]), 4
        )
        == errors.TOO_MANY_OPS
    )


def test_too_many_ops_is_reported_before_a_compare_without_key() -> None:
    keyless = compare("x", "version", "=", 0)
    keyless.key = b""
    assert refusal(txn_request([keyless] * 3), 2) == errors.TOO_MANY_OPS
    assert refusal(txn_request([keyless])) == errors.EMPTY_KEY


def test_an_empty_request_op_is_key_not_found() -> None:
    assert refusal(txn_request(failure=[rpc_pb2.RequestOp()])) == errors.KEY_NOT_FOUND
    assert (
        refusal(txn_request(success=[txn_op(failure=[rpc_pb2.RequestOp()])]))
        == errors.KEY_NOT_FOUND
    )


def test_each_op_is_checked_as_its_own_request_would_be() -> None:
    assert refusal(txn_request(success=[range_op("")])) == errors.EMPTY_KEY
    assert refusal(txn_request(success=[delete_op("")])) == errors.EMPTY_KEY
    assert (
        refusal(txn_request(failure=[put_op("a", "v", ignore_value=True)])) == errors.VALUE_PROVIDED
    )
    assert (
        refusal(txn_request(failure=[put_op("a", "", ignore_lease=True, lease=1)]))
        == errors.LEASE_PROVIDED
    )


def test_form_errors_come_before_duplicate_keys_whichever_branch() -> None:
    duplicate = [put_op("d", "1"), put_op("d", "2")]
    assert refusal(txn_request(success=duplicate, failure=[put_op("", "v")])) == errors.EMPTY_KEY


@pytest.mark.parametrize(
    ("ops", "refused"),
    [
        ([put_op("a", "1"), put_op("a", "2")], True),
        ([delete_op("a"), put_op("a", "1")], True),
        ([put_op("b", "1"), delete_op("a", "c")], True),
        ([put_op("c", "1"), delete_op("a", "c")], False),  # range_end is exclusive
        ([put_op("b", "1"), delete_op("a", "\0")], False),  # etcd: \0 covers nothing here
        ([delete_op("a", "c"), delete_op("b", "d")], False),  # overlapping deletes are fine
        ([range_op("a"), put_op("a", "1")], False),
        ([put_op("a", "1"), txn_op(success=[put_op("a", "2")])], True),
        (
            [txn_op([compare("a", "version", ">", 0)], [put_op("a", "s")], [put_op("a", "f")])],
            False,
        ),
        ([txn_op(success=[put_op("a", "1")]), txn_op(failure=[put_op("a", "2")])], True),
        ([txn_op(success=[delete_op("a")]), put_op("a", "1")], True),
        ([txn_op(success=[put_op("a", "1")]), txn_op(success=[delete_op("a")])], False),
        ([txn_op(success=[delete_op("a")]), txn_op(success=[put_op("a", "1")])], True),
    ],
)
def test_duplicate_keys_in_one_branch(ops: list[rpc_pb2.RequestOp], refused: bool) -> None:
    for request in (txn_request(success=ops), txn_request(failure=ops)):
        assert refusal(request) == (errors.DUPLICATE_KEY if refused else None)
