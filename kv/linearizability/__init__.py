"""kv.linearizability: checking that a history of requests is linearizable (chapter 4).

Pure: no I/O, no clock. The Raft chapters' simulator tests and the real-process tests record
what their clients asked and were told, and this package judges it.

What linearizability is
-----------------------
A replicated store is *linearizable* if it behaves like one copy of the data that applies
each request at a single instant somewhere between the moment the client sent it and the
moment the answer arrived (Herlihy & Wing 1990). That is etcd's promise for every write and
for reads that are not ``--consistency=s``: once a put has been acknowledged, every read that
starts later sees it or something newer, whichever member answers.

A test cannot see those instants. It sees a *history*: for each request, when it was called,
when it returned, and with what answer. The question is whether *some* choice of instants --
equivalently, some sequential order of all the requests -- explains every answer, under two
rules: each answer is what one copy of the data would have given at that point of the order,
and an operation that returned before another was called comes before it in the order.

Why there are many orders to consider
-------------------------------------
Operations that overlap in time may take effect in either order. Ten clients that each keep
one request in flight give up to 10! orders for every ten overlapping requests, and the
orders of successive groups multiply. A request that never returned (its client crashed or
timed out) adds choices of its own: it may have taken effect at any point after it was
called, or not at all.

What the checker searches
-------------------------
`check` builds an order one operation at a time, depth first (Wing & Gong 1993, in the form
of Lowe 2017). The next operation may be any one whose call came before the earliest return
among the operations not yet placed; the `Model` says whether it fits the state the order has
reached. When the operation with that earliest return cannot be placed in time, the search
backs up and tries another choice. If every operation gets placed, the order is a
linearization; if every choice fails, there is none, and the result shows the longest prefix
found and the operations that could not come after it.

Why it is fast enough
---------------------
Two things cut the search down to size. The *cache* (Lowe 2017): what can come next depends
only on which operations are already placed and on the state they led to, not on their
order, so the search remembers every (set of placed operations, state) pair it has reached and
never explores one twice; many orders of concurrent reads and writes collapse into a few
states. And *partitioning* (Herlihy & Wing's locality; Horn & Kroening 2015's
P-compositionality): a history is linearizable iff its operations on each key are, so the
checker searches each key's small history alone instead of one big one. Only a model that
also checks etcd's revisions, which are global to the store, gives this up. A third cut: a
read that fits the state reached can always be placed right there, so the search never tries
it anywhere else (`checker` shows why that is safe).

A few thousand operations from ten clients on ten keys check in tens of milliseconds. The
search is still exponential in the worst case -- many clients hammering one key -- so a
caller bounds it and may get `Outcome.UNKNOWN` instead of a verdict.

Modules, in reading order:

* `history` -- `Operation` (call, return, input, output), `Recorder`, `history_from_events`.
* `model` -- the `Model` protocol and `KeyValueModel` (get, put, delete, compare-and-set).
* `checker` -- `check` and its `CheckResult`.

Two later chapters extend the model, in modules of their own: `txn` (chapter 6: `StoreModel`,
multi-key ``Txn`` with compares on value, version and mod revision) and `leases` (chapter 7:
`LeaseModel`, lease grant, put with a lease, revoke deleting the lease's keys at once).
"""

from kv.linearizability.checker import CheckResult, Failure, Outcome, check
from kv.linearizability.history import (
    Call,
    Operation,
    Recorder,
    Return,
    Time,
    history_from_events,
)
from kv.linearizability.model import (
    CompareAndSet,
    CompareAndSetResult,
    Delete,
    DeleteResult,
    Get,
    GetResult,
    Key,
    KeyValueModel,
    KvInput,
    KvOutput,
    KvState,
    Model,
    Put,
    PutResult,
    Value,
)

__all__ = [
    "Call",
    "CheckResult",
    "CompareAndSet",
    "CompareAndSetResult",
    "Delete",
    "DeleteResult",
    "Failure",
    "Get",
    "GetResult",
    "Key",
    "KeyValueModel",
    "KvInput",
    "KvOutput",
    "KvState",
    "Model",
    "Operation",
    "Outcome",
    "Put",
    "PutResult",
    "Recorder",
    "Return",
    "Time",
    "Value",
    "check",
    "history_from_events",
]
