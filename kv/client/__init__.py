"""A small asyncio client for etcd's v3 API, over grpc.aio (chapter 1).

The tests, the benchmark and later the TUI talk to kv (and to the real etcd: the wire is the
same) through `KVClient`. It is deliberately thin: each method builds one etcd request and
returns etcd's protobuf response unchanged, so a test can assert on exactly what the server
sent. Keys and values may be ``str`` (encoded as UTF-8) or ``bytes``.

A failed call raises `kv.server.errors.EtcdError` carrying the gRPC status code and the
server's message, the same pair etcd's Go client matches on (etcd:
``api/v3rpc/rpctypes/error.go``)::

    async with KVClient("127.0.0.1:2379") as client:
        await client.put("greeting", "hello")
        kv = await client.get("greeting")
        assert kv is not None and kv.value == b"hello"

Reading order:

* `kv.client.keys` -- keys as ``str`` or ``bytes``; `prefix_end` and `key_after`.
* `kv.client.kv_client` -- `KVClient`: the channel to one endpoint and one method per RPC.
* `kv.client.txn` -- the parts of a ``TxnRequest``: `compare`, `range_op`, `put_op`,
  `delete_op`, `txn_op`, `txn_request` (chapter 6).
* `kv.client.keep_alive` -- `KeepAlive`, a LeaseKeepAlive stream (chapter 7).
* `kv.client.watch` -- `Watch`, a Watch stream with one watcher (chapter 8).
"""

from kv.client.keep_alive import KeepAlive
from kv.client.keys import Bytes, key_after, prefix_end
from kv.client.kv_client import DEFAULT_TIMEOUT, ChannelOption, KVClient
from kv.client.txn import (
    COMPARE_RESULTS,
    COMPARE_TARGETS,
    compare,
    delete_op,
    put_op,
    range_op,
    txn_op,
    txn_request,
)
from kv.client.watch import Watch

__all__ = [
    "COMPARE_RESULTS",
    "COMPARE_TARGETS",
    "DEFAULT_TIMEOUT",
    "Bytes",
    "ChannelOption",
    "KVClient",
    "KeepAlive",
    "Watch",
    "compare",
    "delete_op",
    "key_after",
    "prefix_end",
    "put_op",
    "range_op",
    "txn_op",
    "txn_request",
]
