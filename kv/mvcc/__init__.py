"""kv.mvcc: the multi-version key-value store (chapter 1). Pure: no I/O, no clock.

Modules, in reading order:

* `revision` -- `Revision`, the (main, sub) logical clock of every change.
* `key_index` -- `KeyIndex`: one key's revisions, grouped into generations.
* `tree_index` -- `TreeIndex`: every key's `KeyIndex`, in key order, for range reads.
* `store` -- `Store`: puts, deletes, reads at any revision, compaction.
* `hash` -- `hash_kv`: etcd's HashKV checksum of the history.
* `errors` -- the errors, with etcd's messages.
"""

from kv.mvcc.errors import CompactedError, FutureRevisionError, MvccError
from kv.mvcc.hash import HashResult, hash_kv
from kv.mvcc.key_index import Generation, KeyIndex, KeyVersion
from kv.mvcc.revision import Revision
from kv.mvcc.store import HistoryEntry, KeyValue, RangeResult, Store, WriteTxn
from kv.mvcc.tree_index import TreeIndex

__all__ = [
    "CompactedError",
    "FutureRevisionError",
    "Generation",
    "HashResult",
    "HistoryEntry",
    "KeyIndex",
    "KeyValue",
    "KeyVersion",
    "MvccError",
    "RangeResult",
    "Revision",
    "Store",
    "TreeIndex",
    "WriteTxn",
    "hash_kv",
]
