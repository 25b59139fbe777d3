"""Transactions: compares, then one branch of operations, at one revision (chapter 6).

Theory of operation
-------------------
etcd's ``Txn`` is a *mini-transaction*: a list of compares, and two lists of operations. If
every compare holds, the ``success`` operations run, else the ``failure`` ones; an operation is
a range, a put, a delete or another txn. The applier (etcd: ``etcdserver/apply.go``,
``applierV3backend.Txn``) carries one out in three steps, and so do we:

1. **Decide.** Evaluate the compares of the txn, and of every txn nested in the branch that
   runs, against the store as it is *before* the txn (`decide`). No operation has run yet, so
   a nested txn's compares never see the outer txn's writes.
2. **Check the content.** The form of the request was checked before it was proposed
   (`kv.server.requests.validate.check_txn`); now, on the branches taken only, what depends
   on the store: a put's lease must exist, ``ignore_value``/``ignore_lease`` need the key, a
   range's revision must be neither compacted nor in the future (`check_content`). Every
   member applies the same entry to the same store, so a txn that fails here fails on every
   member and changes nothing anywhere (etcd bug #18667 was followers skipping this step).
3. **Apply.** Run the chosen operations in order inside one `kv.mvcc.WriteTxn`: they share
   the next main revision, each taking the next sub revision; ranges see the txn's earlier
   writes. A txn that wrote nothing leaves the revision where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass

from kv.api.etcdserverpb import rpc_pb2
from kv.mvcc import CompactedError, FutureRevisionError, KeyValue, Store, WriteTxn
from kv.server import errors
from kv.server.applied.apply import Reader, apply_delete_range, apply_put, apply_range

Compare = rpc_pb2.Compare
RequestOp = rpc_pb2.RequestOp
TxnRequest = rpc_pb2.TxnRequest
TxnResponse = rpc_pb2.TxnResponse

#: An absent key, as a compare sees it: every number 0 (etcd: ``mvccpb.KeyValue{}``).
_ABSENT = KeyValue(key=b"", value=b"", create_revision=0, mod_revision=0, version=0, lease=0)

# --8<-- [start:compare]
#: Per numeric target: the field of the key read, and the member of ``target_union`` it is
#: compared with (etcd: ``compareKV``). A target_union set to another member means 0.
_NUMBERS: dict[int, tuple[Callable[[KeyValue], int], str]] = {
    Compare.VERSION: (lambda kv: kv.version, "version"),
    Compare.CREATE: (lambda kv: kv.create_revision, "create_revision"),
    Compare.MOD: (lambda kv: kv.mod_revision, "mod_revision"),
    Compare.LEASE: (lambda kv: kv.lease, "lease"),
}


def _order(compare: rpc_pb2.Compare, kv: KeyValue) -> int:
    """-1, 0 or 1: the key's field against the compare's operand."""
    given_member = compare.WhichOneof("target_union")
    if compare.target == Compare.VALUE:
        value: bytes = compare.value if given_member == "value" else b""
        return (kv.value > value) - (kv.value < value)
    if compare.target not in _NUMBERS:
        return 0  # etcd: an unknown target compares as equal
    field, member = _NUMBERS[compare.target]
    number: int = getattr(compare, member) if given_member == member else 0
    actual = field(kv)
    return (actual > number) - (actual < number)


def _holds_for(compare: rpc_pb2.Compare, kv: KeyValue) -> bool:
    order = _order(compare, kv)
    match compare.result:
        case Compare.EQUAL:
            return order == 0
        case Compare.NOT_EQUAL:
            return order != 0
        case Compare.GREATER:
            return order > 0
        case Compare.LESS:
            return order < 0
    return True  # etcd: an unknown result holds


def compare_holds(reader: Reader, compare: rpc_pb2.Compare) -> bool:
    """Does ``compare`` hold? With a ``range_end``, it must hold for every key in the range.

    A missing key (or an empty range) compares as a key whose numbers are all 0, so that
    ``create_revision == 0`` asks "is it absent?"; but a VALUE compare on it is false, even
    NOT_EQUAL: protobuf has no way to tell a missing value from an empty one (etcd:
    ``applyCompare``).
    """
    kvs = reader.range(compare.key, compare.range_end).kvs
    if not kvs:
        return compare.target != Compare.VALUE and _holds_for(compare, _ABSENT)
    return all(_holds_for(compare, kv) for kv in kvs)


# --8<-- [end:compare]


# --8<-- [start:decide]
@dataclass(frozen=True, slots=True)
class Decision:
    """Which branch a txn takes, and the decisions of the txns nested in that branch (in order).

    All of it is decided before any operation runs (etcd: ``compareToPath``).
    """

    succeeded: bool
    nested: tuple[Decision, ...]

    def branch(self, request: rpc_pb2.TxnRequest) -> Sequence[rpc_pb2.RequestOp]:
        return request.success if self.succeeded else request.failure


def decide(reader: Reader, request: rpc_pb2.TxnRequest) -> Decision:
    """Evaluate the compares of ``request`` and of every txn nested in the branch it takes."""
    succeeded = all(compare_holds(reader, compare) for compare in request.compare)
    ops = request.success if succeeded else request.failure
    nested = tuple(decide(reader, op.request_txn) for op in ops if _kind(op) == "request_txn")
    return Decision(succeeded, nested)


# --8<-- [end:decide]


def chosen_ops(request: rpc_pb2.TxnRequest, decision: Decision) -> Iterator[rpc_pb2.RequestOp]:
    """The ranges, puts and deletes that will run, nested txns' included, in order."""
    nested = iter(decision.nested)
    for op in decision.branch(request):
        if _kind(op) == "request_txn":
            yield from chosen_ops(op.request_txn, next(nested))
        else:
            yield op


# --8<-- [start:content]
def check_content(
    store: Store, ops: Sequence[rpc_pb2.RequestOp], leases: Container[int] = frozenset()
) -> None:
    """Refuse a txn whose chosen operations cannot run on this store (etcd: ``checkPut``, then
    ``checkRange``, each over every chosen operation): before anything is written."""
    for op in ops:
        if _kind(op) == "request_put":
            put = op.request_put
            if (put.ignore_value or put.ignore_lease) and not store.range(put.key).kvs:
                raise errors.KEY_NOT_FOUND
            if put.lease and put.lease not in leases:  # chapter 7
                raise errors.LEASE_NOT_FOUND
    for op in ops:
        # Not Range's own rule: any revision but 0 is checked, so a negative one is "compacted"
        # whenever it is below the compaction revision (-1 before the first compaction).
        revision = op.request_range.revision if _kind(op) == "request_range" else 0
        if revision > store.current_revision:
            raise errors.from_mvcc(FutureRevisionError())
        if revision and revision < store.compact_revision:
            raise errors.from_mvcc(CompactedError())


# --8<-- [end:content]


# --8<-- [start:apply]
def apply_txn(
    store: Store, request: rpc_pb2.TxnRequest, leases: Container[int] = frozenset()
) -> rpc_pb2.TxnResponse:
    """Carry out a txn: decide, check, then run one branch at one revision. ``leases``: the
    IDs of the leases that exist (chapter 7), for puts with a lease.

    Raises:
        EtcdError: a content check failed; nothing was written.
    """
    decision = decide(store, request)
    check_content(store, list(chosen_ops(request, decision)), leases)
    response = rpc_pb2.TxnResponse()
    with store.write() as txn:  # a txn that writes nothing leaves the revision as it is
        _run(txn, request, decision, response)
    response.header.revision = txn.revision
    return response


def _run(
    txn: WriteTxn,
    request: rpc_pb2.TxnRequest,
    decision: Decision,
    response: rpc_pb2.TxnResponse,
) -> None:
    response.succeeded = decision.succeeded
    nested = iter(decision.nested)
    for op in decision.branch(request):
        answer = response.responses.add()
        match _kind(op):
            case "request_range":  # sees the writes before it in this txn
                answer.response_range.CopyFrom(apply_range(txn, op.request_range))
            case "request_put":
                answer.response_put.CopyFrom(apply_put(txn, op.request_put))
            case "request_delete_range":
                deleted = apply_delete_range(txn, op.request_delete_range)
                answer.response_delete_range.CopyFrom(deleted)
            case "request_txn":
                answer.response_txn.header.SetInParent()  # etcd: a nested txn's header is empty
                _run(txn, op.request_txn, next(nested), answer.response_txn)


# --8<-- [end:apply]


def _kind(op: rpc_pb2.RequestOp) -> str | None:
    kind: str | None = op.WhichOneof("request")
    return kind


def is_read_only(request: rpc_pb2.TxnRequest) -> bool:
    """Only ranges in both branches (a nested txn counts as a write): etcd serves it without
    the log (``isTxnReadonly``)."""
    return all(_kind(op) == "request_range" for op in [*request.success, *request.failure])


def is_serializable(request: rpc_pb2.TxnRequest) -> bool:
    """A read-only txn whose ranges all ask for serializable reads needs no ReadIndex round
    either (etcd: ``isTxnSerializable``); one linearizable range makes the whole txn so."""
    ops = [*request.success, *request.failure]
    return all(_kind(op) == "request_range" and op.request_range.serializable for op in ops)


def puts_data(request: rpc_pb2.TxnRequest) -> bool:
    """Does either branch hold a put of its own? Such a txn has a cost for the space quota
    (etcd: ``costTxnReq`` counts the puts of each branch, not of nested txns), so NOSPACE
    refuses it."""
    return any(_kind(op) == "request_put" for op in [*request.success, *request.failure])
