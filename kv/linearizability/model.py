"""Sequential specifications: what a correct single copy of the object would answer (chapter 4).

A `Model` is the sequential specification the checker compares a history with: a start state
and a ``step`` that says whether an operation with this input could have produced this output
in this state, and what state follows. The checker never looks inside a state; it only needs
states to be hashable and comparable, so it can remember which (set of operations, state)
pairs it has already explored.

`KeyValueModel` specifies etcd's key-value operations -- `Get`, `Put`, `Delete` and
`CompareAndSet` (the one-key transaction ``if value(k) == x then put(k, y)``) -- in two forms:

* ``KeyValueModel()`` checks values only. Keys are then independent objects, and
  linearizability is *local* (Herlihy & Wing 1990, Theorem 1): a history is linearizable iff
  its restriction to each key is. So ``partition`` splits the history by key and the checker
  searches each small part alone (Horn & Kroening 2015 call this P-compositionality).
* ``KeyValueModel(check_revisions=True)`` also checks the revisions etcd returns in response
  headers. The revision is one counter for the whole store (etcd: ``mvcc/kvstore.go``, every
  write request that changes something takes the next one), so it ties all keys together: a
  put of ``a`` at revision 7 says something about a put of ``b`` at revision 6. Such a model
  is not local, and ``partition`` returns the whole history as one part.

``is_read_only`` tells the checker which operations never change the state (a get; a
delete that deleted nothing; a compare-and-set that failed), so that it need not try them
in more than one place.

An operation that never returned comes with output ``None``. ``step`` must then accept it in
any state (its answer is unknown) and apply its effect. That is how the checker covers "it may
not have happened": an operation that never returned may take effect after everything else,
where nobody observes it, which is the same as not taking effect at all.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar

from kv.linearizability.history import Operation

State = TypeVar("State", bound=Hashable)
In = TypeVar("In")
Out = TypeVar("Out")


# --8<-- [start:model]
class Model(Protocol[State, In, Out]):
    """A sequential specification, as the checker uses it."""

    def init(self) -> State:
        """The state before any operation."""
        ...

    def step(self, state: State, input: In, output: Out | None) -> tuple[bool, State]:
        """Could ``input`` answer ``output`` in ``state``? And the state after it.

        ``output`` is ``None`` for an operation that never returned: accept it in any state.
        """
        ...

    def is_read_only(self, input: In, output: Out | None) -> bool:
        """Does this operation leave the state unchanged in every state where it fits?

        The checker then places it as soon as it fits and tries no other place for it, which
        prunes much of the search (a read that fits now can always go now). False is always
        safe; True for an operation that can change the state makes verdicts wrong.
        """
        ...

    def partition(self, history: Sequence[Operation[In, Out]]) -> list[list[Operation[In, Out]]]:
        """Split into parts that are linearizable independently (or return ``[history]``).

        The parts must hold the very `Operation` objects of ``history``, each exactly once.
        """
        ...

    def describe_operation(self, input: In, output: Out | None) -> str:
        """One line for messages, such as ``put('a', '1') -> ok``."""
        ...

    def describe_state(self, state: State) -> str:
        """One line for messages, such as ``{'a': '1'}``."""
        ...


# --8<-- [end:model]

Key: TypeAlias = bytes | str
Value: TypeAlias = bytes | str


@dataclass(frozen=True, slots=True)
class Get:
    """Read one key (etcd's ``Range`` of a single key, linearizable)."""

    key: Key


@dataclass(frozen=True, slots=True)
class Put:
    """Write one key."""

    key: Key
    value: Value

    def __deepcopy__(self, memo: dict[int, object]) -> Put:
        return self  # immutable: shared by a deep copy (`kv.sim.Cluster.copy`'s keyframes)


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete one key (etcd's ``DeleteRange`` of a single key)."""

    key: Key


@dataclass(frozen=True, slots=True)
class CompareAndSet:
    """``Txn(compare: value(key) == expected, success: put(key, new))``.

    ``expected=None`` means "the key does not exist" (etcd: ``create_revision(key) == 0``).
    """

    key: Key
    expected: Value | None
    new: Value


@dataclass(frozen=True, slots=True)
class GetResult:
    """The value read (``None``: no such key) and, optionally, the header's revision."""

    value: Value | None
    revision: int | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    """A put's answer: optionally the revision it created."""

    revision: int | None = None

    def __deepcopy__(self, memo: dict[int, object]) -> PutResult:
        return self  # immutable: shared by a deep copy (`kv.sim.Cluster.copy`'s keyframes)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """A delete's answer: optionally how many keys it deleted (0 or 1), and the revision."""

    deleted: int | None = None
    revision: int | None = None


@dataclass(frozen=True, slots=True)
class CompareAndSetResult:
    """Whether the compare held (and the put was done), and optionally the revision."""

    succeeded: bool
    revision: int | None = None


KvInput: TypeAlias = Get | Put | Delete | CompareAndSet
KvOutput: TypeAlias = GetResult | PutResult | DeleteResult | CompareAndSetResult

#: etcd's first revision: a fresh store is at revision 1 (``mvcc/kvstore.go``).
FIRST_REVISION = 1


@dataclass(frozen=True, slots=True)
class KvState:
    """The store as the specification sees it: each key's value, and the store revision.

    ``values`` is a frozenset of (key, value) pairs so that equal stores are equal states
    whatever the order of the writes that made them, and hashing is cheap (a frozenset
    caches its hash). A model that does not check revisions keeps ``revision`` fixed, so
    that two stores holding the same values are one state for the checker's cache.
    """

    values: frozenset[tuple[Key, Value]]
    revision: int

    def get(self, key: Key) -> Value | None:
        """The value of ``key``, or ``None`` if there is no such key."""
        for stored_key, value in self.values:
            if stored_key == key:
                return value
        return None

    def with_value(self, key: Key, value: Value | None, revision: int) -> KvState:
        """This store with ``key`` set to ``value`` (``None``: deleted), at ``revision``."""
        kept = frozenset(pair for pair in self.values if pair[0] != key)
        return KvState(kept if value is None else kept | {(key, value)}, revision)


@dataclass(frozen=True, slots=True)
class KeyValueModel:
    """etcd's key-value operations on single keys, as a `Model`.

    Args:
        check_revisions: also check the revisions in outputs (a ``None`` revision in an
            output is never checked). The store's revision is global, so the model then
            cannot be partitioned by key and the search is over the whole history.
        initial_revision: the store's revision before the history (1 for a fresh cluster).
    """

    check_revisions: bool = False
    initial_revision: int = FIRST_REVISION

    def init(self) -> KvState:
        return KvState(frozenset(), self.initial_revision if self.check_revisions else 0)

    # --8<-- [start:kv-step]
    def step(self, state: KvState, input: KvInput, output: KvOutput | None) -> tuple[bool, KvState]:
        current = state.get(input.key)
        # etcd: a write request takes the next revision only if it changes something
        # (a delete of a missing key and a failed compare leave the revision as it is).
        bumped = state.revision + 1 if self.check_revisions else state.revision
        match input:
            case Get():
                if output is None:
                    return True, state
                result = _expect(output, GetResult, input)
                return result.value == current and self._revision_ok(result, state), state
            case Put(key, value):
                after = state.with_value(key, value, bumped)
                if output is None:
                    return True, after
                return self._revision_ok(_expect(output, PutResult, input), after), after
            case Delete(key):
                after = state if current is None else state.with_value(key, None, bumped)
                if output is None:
                    return True, after
                deleted = _expect(output, DeleteResult, input)
                count_ok = deleted.deleted is None or deleted.deleted == int(current is not None)
                return count_ok and self._revision_ok(deleted, after), after
            case CompareAndSet(key, expected, new):
                succeeded = current == expected
                after = state.with_value(key, new, bumped) if succeeded else state
                if output is None:
                    return True, after
                cas = _expect(output, CompareAndSetResult, input)
                return cas.succeeded == succeeded and self._revision_ok(cas, after), after

    # --8<-- [end:kv-step]

    def is_read_only(self, input: KvInput, output: KvOutput | None) -> bool:
        # A get never writes; a delete that deleted nothing and a compare-and-set that failed
        # fit only where they change nothing, and take no revision there (etcd).
        match output:
            case DeleteResult(deleted=0) | CompareAndSetResult(succeeded=False):
                return True
        return isinstance(input, Get)

    def _revision_ok(
        self, output: GetResult | PutResult | DeleteResult | CompareAndSetResult, after: KvState
    ) -> bool:
        """The revision in a response header is the store's revision after the request."""
        return not self.check_revisions or output.revision in (None, after.revision)

    def partition(
        self, history: Sequence[Operation[KvInput, KvOutput]]
    ) -> list[list[Operation[KvInput, KvOutput]]]:
        if self.check_revisions:
            return [list(history)]  # revisions relate every key to every other: one part
        by_key: dict[Key, list[Operation[KvInput, KvOutput]]] = {}
        for operation in history:
            by_key.setdefault(operation.input.key, []).append(operation)
        return list(by_key.values())

    def describe_operation(self, input: KvInput, output: KvOutput | None) -> str:
        match input:
            case Get(key):
                call = f"get({key!r})"
            case Put(key, value):
                call = f"put({key!r}, {value!r})"
            case Delete(key):
                call = f"delete({key!r})"
            case CompareAndSet(key, expected, new):
                call = f"compare-and-set({key!r}, {expected!r} -> {new!r})"
        return f"{call} -> {_describe_output(output)}"

    def describe_state(self, state: KvState) -> str:
        values = ", ".join(f"{key!r}: {value!r}" for key, value in sorted(state.values, key=repr))
        revision = f" at revision {state.revision}" if self.check_revisions else ""
        return "{" + values + "}" + revision


OutputT = TypeVar("OutputT", GetResult, PutResult, DeleteResult, CompareAndSetResult)


def _expect(output: KvOutput, kind: type[OutputT], input: KvInput) -> OutputT:
    """``output`` as the result type of ``input``; a mismatch is a bug in the test's history."""
    if not isinstance(output, kind):
        raise TypeError(f"{input} cannot answer {output}; expected a {kind.__name__}")
    return output


def _describe_output(output: KvOutput | None) -> str:
    revision = "" if output is None or output.revision is None else f" @{output.revision}"
    match output:
        case None:
            return "? (never returned)"
        case GetResult(value):
            return ("(none)" if value is None else repr(value)) + revision
        case PutResult():
            return "ok" + revision
        case DeleteResult(deleted):
            return ("ok" if deleted is None else f"deleted {deleted}") + revision
        case CompareAndSetResult(succeeded):
            return ("succeeded" if succeeded else "failed") + revision
