"""The sequential specification of multi-key transactions (chapter 6).

`StoreModel` is the `kv.linearizability.model.Model` of a store that answers chapter 4's
single-key operations (`Get`, `Put`, `Delete`, `CompareAndSet`) and etcd's `Txn`: compares
on the value, version or mod revision of several keys, then the puts and deletes of one
branch, all at one revision (etcd: ``applierV3.Txn`` evaluates every compare before any op,
and the ops of a txn that changes something share the next main revision).

Why a second model and not `KeyValueModel` with one more input: a txn compares versions and
mod revisions, so the state must remember them per key; and it writes several keys at once,
which changes how the history may be split.

Partitioning, honestly: linearizability is local to *objects* (Herlihy & Wing 1990), and a
multi-key txn makes the keys it touches one object. So `StoreModel.partition` joins every
key a txn compares or writes into one group (union-find) and splits the history by group;
keys that no txn ties together are still searched alone. A compare on a mod revision reads the
store's global revision, and so does a model that checks revisions: then the whole history is
one part, as for ``KeyValueModel(check_revisions=True)``.

Leases (chapter 7, `kv.linearizability.leases`) extend this model: a key's `Record` carries
its lease already, and the partition's groups are over "nodes" a subclass may widen.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from kv.linearizability.history import Operation
from kv.linearizability.model import (
    FIRST_REVISION,
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
    Put,
    PutResult,
    Value,
)


class Target(enum.Enum):
    """What a `Compare` reads of its key (etcd's ``Compare.CompareTarget``, the ones modelled)."""

    VALUE = "value"
    VERSION = "version"
    MOD = "mod"


@dataclass(frozen=True, slots=True)
class Compare:
    """``target(key) == expected``.

    etcd: a VALUE compare on a missing key is false; VERSION and MOD compare a missing key
    as 0 (``applyCompare`` compares an empty ``KeyValue``).
    """

    key: Key
    target: Target
    expected: Value | int


@dataclass(frozen=True, slots=True)
class TxnPut:
    """A put in a txn's branch."""

    key: Key
    value: Value


@dataclass(frozen=True, slots=True)
class TxnDelete:
    """A delete (of one key) in a txn's branch."""

    key: Key


TxnOp: TypeAlias = TxnPut | TxnDelete


@dataclass(frozen=True, slots=True)
class Txn:
    """``if all(compares) then success else failure``, atomically, at one revision."""

    compares: tuple[Compare, ...]
    success: tuple[TxnOp, ...] = ()
    failure: tuple[TxnOp, ...] = ()

    @property
    def keys(self) -> set[Key]:
        """Every key the txn compares or writes."""
        ops = (*self.success, *self.failure)
        return {compare.key for compare in self.compares} | {op.key for op in ops}


@dataclass(frozen=True, slots=True)
class TxnResult:
    """Which branch ran, and optionally the header's revision."""

    succeeded: bool
    revision: int | None = None


#: What `StoreModel` models: chapter 4's operations and the txn.
TxnInput: TypeAlias = KvInput | Txn
TxnOutput: TypeAlias = KvOutput | TxnResult


@dataclass(frozen=True, slots=True)
class Record:
    """A live key: its value, version (puts since creation), mod revision and lease (0: none).

    ``mod_revision`` is 0 in a model that does not track revisions.
    """

    value: Value
    version: int
    mod_revision: int = 0
    lease: int = 0


@dataclass(frozen=True, slots=True)
class StoreState:
    """The store as the specification sees it: live keys, the revision, granted leases.

    Frozensets, so that equal stores are equal states whatever order of writes made them.
    """

    records: frozenset[tuple[Key, Record]]
    revision: int
    leases: frozenset[int] = frozenset()

    def get(self, key: Key) -> Record | None:
        """The record of ``key``, or ``None`` if there is no such key."""
        for stored, record in self.records:
            if stored == key:
                return record
        return None

    def with_record(self, key: Key, record: Record | None) -> StoreState:
        """This store with ``key`` holding ``record`` (``None``: deleted)."""
        kept = frozenset(pair for pair in self.records if pair[0] != key)
        records = kept if record is None else kept | {(key, record)}
        return StoreState(records, self.revision, self.leases)


@dataclass(frozen=True, slots=True)
class StoreModel:
    """Chapter 4's key-value operations and chapter 6's multi-key `Txn`, as a `Model`.

    Args:
        check_revisions: check the revisions in outputs and track mod revisions (needed for
            MOD compares); the whole history is then one part.
        initial_revision: the store's revision before the history.
    """

    check_revisions: bool = False
    initial_revision: int = FIRST_REVISION

    def init(self) -> StoreState:
        return StoreState(frozenset(), self.initial_revision if self.check_revisions else 0)

    def step(self, state: StoreState, input: Any, output: Any) -> tuple[bool, StoreState]:
        """Could ``input`` answer ``output`` in ``state``? And the state after it."""
        match input:
            case Get(key):
                record = state.get(key)
                value = None if record is None else record.value
                return output is None or (
                    _of(output, GetResult).value == value and self._revision_ok(output, state)
                ), state
            case Put(key, value):
                return self._answered(self.write(state, [TxnPut(key, value)]), output, PutResult)
            case Delete(key):
                after = self.write(state, [TxnDelete(key)])
                deleted = int(after is not state)
                fits = output is None or _of(output, DeleteResult).deleted in (None, deleted)
                return fits and self._revision_ok(output, after), after
            case CompareAndSet(key, expected, new):
                compare = (
                    Compare(key, Target.VERSION, 0)  # "absent": etcd's create_revision == 0
                    if expected is None
                    else Compare(key, Target.VALUE, expected)
                )
                txn = Txn((compare,), (TxnPut(key, new),))
                return self._txn(state, txn, output, CompareAndSetResult)
            case Txn():
                return self._txn(state, input, output, TxnResult)
        raise TypeError(f"{type(self).__name__} does not model {input!r}")

    def _txn(
        self,
        state: StoreState,
        txn: Txn,
        output: Any,
        kind: type[TxnResult] | type[CompareAndSetResult],
    ) -> tuple[bool, StoreState]:
        succeeded = all(self._holds(state, compare) for compare in txn.compares)
        after = self.write(state, txn.success if succeeded else txn.failure)
        if output is None:
            return True, after
        return _of(output, kind).succeeded == succeeded and self._revision_ok(output, after), after

    def _answered(self, after: StoreState, output: Any, kind: type[Any]) -> tuple[bool, StoreState]:
        return output is None or (_of(output, kind) and self._revision_ok(output, after)), after

    def _holds(self, state: StoreState, compare: Compare) -> bool:
        record = state.get(compare.key)
        match compare.target:
            case Target.VALUE:
                return record is not None and record.value == compare.expected
            case Target.VERSION:
                return (0 if record is None else record.version) == compare.expected
            case Target.MOD:
                if not self.check_revisions:
                    raise ValueError("a MOD compare needs StoreModel(check_revisions=True)")
                return (0 if record is None else record.mod_revision) == compare.expected

    def write(self, state: StoreState, ops: Iterable[TxnOp], lease: int = 0) -> StoreState:
        """``ops`` applied at one revision, the next one if any of them changed something
        (etcd: a delete of a missing key changes nothing). A put attaches ``lease``."""
        revision = state.revision + 1 if self.check_revisions else state.revision
        after = state
        for op in ops:
            current = after.get(op.key)
            if isinstance(op, TxnPut):
                version = 1 if current is None else current.version + 1
                after = after.with_record(op.key, Record(op.value, version, revision, lease))
            elif current is not None:
                after = after.with_record(op.key, None)
        if after is state:
            return state
        return StoreState(after.records, revision, after.leases)

    def _revision_ok(self, output: Any, after: StoreState) -> bool:
        """The revision in a response header is the store's revision after the request."""
        revision = getattr(output, "revision", None)
        return not self.check_revisions or revision in (None, after.revision)

    def is_read_only(self, input: Any, output: Any) -> bool:
        # Operations that change nothing wherever they fit: a get, a delete that deleted
        # nothing, a txn whose branch that ran has no ops.
        match input, output:
            case Get(), _:
                return True
            case Delete(), DeleteResult(deleted=0):
                return True
            case CompareAndSet(), CompareAndSetResult(succeeded=False):
                return True
            case Txn(), TxnResult(succeeded=succeeded):
                return not (input.success if succeeded else input.failure)
        return False

    def nodes(self, input: Any) -> set[Hashable]:
        """The objects an operation touches: operations that share one are in one part."""
        if isinstance(input, Txn):
            return set(input.keys)
        return {input.key}

    def partition(self, history: Sequence[Operation[Any, Any]]) -> list[list[Operation[Any, Any]]]:
        if self.check_revisions:
            return [list(history)]  # revisions relate every key to every other: one part
        parent: dict[Hashable, Hashable] = {}

        def root(node: Hashable) -> Hashable:
            while parent.setdefault(node, node) != node:
                parent[node] = parent[parent[node]]  # path halving
                node = parent[node]
            return node

        touched = [self.nodes(operation.input) for operation in history]
        for nodes in touched:
            first, *rest = nodes
            for node in rest:
                parent[root(node)] = root(first)
        parts: dict[Hashable, list[Operation[Any, Any]]] = {}
        for operation, nodes in zip(history, touched, strict=True):
            parts.setdefault(root(next(iter(nodes))), []).append(operation)
        return list(parts.values())

    def describe_operation(self, input: Any, output: Any) -> str:
        if isinstance(input, Txn):
            compares = " and ".join(
                f"{c.target.value}({c.key!r}) == {c.expected!r}" for c in input.compares
            )
            branches = f"then {_ops(input.success)} else {_ops(input.failure)}"
            answer = "? (never returned)"
            if output is not None:
                answer = "succeeded" if output.succeeded else "failed"
                answer += "" if output.revision is None else f" @{output.revision}"
            return f"txn(if {compares or 'true'} {branches}) -> {answer}"
        return KeyValueModel().describe_operation(input, output)

    def describe_state(self, state: StoreState) -> str:
        shown = []
        for key, record in sorted(state.records, key=repr):
            lease = f" lease {record.lease}" if record.lease else ""
            shown.append(f"{key!r}: {record.value!r} v{record.version}{lease}")
        leases = f" leases {sorted(state.leases)}" if state.leases else ""
        revision = f" at revision {state.revision}" if self.check_revisions else ""
        return "{" + ", ".join(shown) + "}" + leases + revision


def _ops(ops: tuple[TxnOp, ...]) -> str:
    return "[" + ", ".join(_op(op) for op in ops) + "]"


def _op(op: TxnOp) -> str:
    return f"put({op.key!r}, {op.value!r})" if isinstance(op, TxnPut) else f"delete({op.key!r})"


def _of(output: Any, kind: type[Any]) -> Any:
    """``output`` as ``kind``; a mismatch is a bug in the test's history."""
    if not isinstance(output, kind):
        raise TypeError(f"expected a {kind.__name__}, not {output!r}")
    return output
