"""Chapter 6's demo: compare-and-swap, and a transfer between two keys, at one revision each.

Run it with ``python3 chapters/06-transactions/demo.py``. It drives the applier directly
(`kv.server.applied.txn.apply_txn` on an in-memory `kv.mvcc.Store`): the same code a member
runs when it applies a Txn from its log.
"""

from __future__ import annotations

from kv.api.etcdserverpb import rpc_pb2
from kv.client import compare, put_op, range_op, txn_request
from kv.mvcc import Store
from kv.server.applied.txn import apply_txn


def show(store: Store, what: str, response: rpc_pb2.TxnResponse) -> None:
    branch = "success" if response.succeeded else "failure"
    print(f"{what:<44} -> {branch}, revision {response.header.revision}")


def cas(store: Store, key: str, expected: str, new: str) -> rpc_pb2.TxnResponse:
    """Put ``new`` only if ``key`` still holds ``expected``; else read the key."""
    return apply_txn(
        store,
        txn_request([compare(key, "value", "=", expected)], [put_op(key, new)], [range_op(key)]),
    )


def main() -> None:
    store = Store()
    store.put(b"config", b"v1")
    print(f"{'put config=v1':<44} -> revision {store.current_revision}")
    show(store, "cas config v1 -> v2 (alice)", cas(store, "config", "v1", "v2"))
    lost = cas(store, "config", "v1", "v3")
    show(store, "cas config v1 -> v3 (bob, too late)", lost)
    print(f"  bob reads config={lost.responses[0].response_range.kvs[0].value.decode()}, retries")
    show(store, "cas config v2 -> v3 (bob)", cas(store, "config", "v2", "v3"))

    store.put(b"alice", b"100")
    store.put(b"bob", b"20")
    balance = store.range(b"alice").kvs[0]
    transfer = txn_request(
        [compare("alice", "mod", "=", balance.mod_revision)],  # nobody wrote alice since we read
        [put_op("alice", "70"), put_op("bob", "50")],
    )
    show(store, "transfer 30 from alice to bob", apply_txn(store, transfer))
    for kv in store.range(b"alice", b"c").kvs:
        print(f"  {kv.key.decode()}={kv.value.decode()} [mod {kv.mod_revision}]")
    show(store, "the same transfer again (stale read)", apply_txn(store, transfer))


if __name__ == "__main__":
    main()
