"""Properties of transactions, for random stores and random txns (chapter 6, hypothesis).

* A txn's writes are its operations applied one after the other, at one revision: the keys
  end as if each op were a request of its own, and the store moves by one revision exactly
  when something changed.
* Compares are judged on the store before the txn, so the branch taken does not depend on the
  ops; and a failed content check changes nothing.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kv.api.etcdserverpb import rpc_pb2
from kv.client import compare, delete_op, put_op, range_op, txn_request
from kv.mvcc import Store
from kv.server.applied.txn import apply_txn

KEYS = st.sampled_from([b"a", b"b", b"c", b"d"])
VALUES = st.sampled_from([b"1", b"2", b"3"])

put_ops = st.builds(lambda k, v: put_op(k, v), KEYS, VALUES)
delete_ops = st.one_of(
    st.builds(lambda k: delete_op(k), KEYS),
    st.builds(lambda k: delete_op(k, k + b"\xff"), KEYS),
)
range_ops = st.builds(lambda k: range_op(k, b"\xff"), KEYS)
ops = st.lists(st.one_of(put_ops, delete_ops, range_ops), max_size=8)
histories = st.lists(st.tuples(KEYS, st.one_of(VALUES, st.none())), max_size=8)


def build(history: list[tuple[bytes, bytes | None]]) -> Store:
    store = Store()
    for key, value in history:
        if value is None:
            store.delete_range(key)
        else:
            store.put(key, value)
    return store


def contents(store: Store) -> list[tuple[bytes, bytes]]:
    return [(kv.key, kv.value) for kv in store.range(b"\0", b"\0").kvs]


def one_by_one(store: Store, requests: list[rpc_pb2.RequestOp]) -> None:
    for op in requests:
        match op.WhichOneof("request"):
            case "request_put":
                store.put(op.request_put.key, op.request_put.value)
            case "request_delete_range":
                store.delete_range(op.request_delete_range.key, op.request_delete_range.range_end)


@settings(max_examples=300, deadline=None)
@given(histories, ops)
def test_a_txn_is_its_ops_in_order_at_one_revision(
    history: list[tuple[bytes, bytes | None]], requests: list[rpc_pb2.RequestOp]
) -> None:
    as_txn, separately = build(history), build(history)
    before = as_txn.current_revision
    done = apply_txn(as_txn, txn_request(success=requests))
    one_by_one(separately, requests)
    assert contents(as_txn) == contents(separately)
    changed = separately.current_revision > before
    assert as_txn.current_revision == done.header.revision == before + int(changed)
    written = [kv for kv in as_txn.range(b"\0", b"\0").kvs if kv.mod_revision > before]
    assert all(kv.mod_revision == before + 1 for kv in written)


@settings(max_examples=200, deadline=None)
@given(histories, KEYS, VALUES, ops, ops)
def test_the_branch_is_decided_by_the_store_before_the_txn(
    history: list[tuple[bytes, bytes | None]],
    key: bytes,
    value: bytes,
    success: list[rpc_pb2.RequestOp],
    failure: list[rpc_pb2.RequestOp],
) -> None:
    store = build(history)
    current = store.range(key).kvs
    expected = bool(current) and current[0].value == value
    done = apply_txn(store, txn_request([compare(key, "value", "=", value)], success, failure))
    assert done.succeeded is expected
    assert len(done.responses) == len(success if expected else failure)
