"""The search for a linearization (chapter 4).

Theory of operation
-------------------
This is Wing & Gong's search (1993) with the cache Lowe added to it ("Testing for
linearizability", Concurrency and Computation 29(4), 2017), as Porcupine implements it: a
depth-first search that builds a sequential order one operation at a time, always at the
front of what is left of the history.

The history becomes a list of *entries*, each operation's call and its return, sorted by
time (a call before a return at the same instant: intervals that touch count as concurrent,
so a clock too coarse to order two events never produces a false alarm). An operation may
take effect next iff its call comes before the first return still in the list -- otherwise
that returned operation finished before it began. The search walks the list from the front:

* At a call: ask the model whether the operation fits the current state. If it does, *lift*
  it -- unlink its call and its return from the list (dancing links, so undoing is O(1)) --
  push it on the stack and start again from the front. If not, try the next entry.
* At a return: the operation it belongs to should have taken effect by now and has not, so
  the last choice was wrong. Pop it, put its entries back, and try the entry after its call.

The list empties iff every operation has been placed: the stack is a linearization. The
stack empties at a return iff every order has been tried: the history is not linearizable.

The cache (Lowe 2017) makes this tractable. Two different orders of the same operations
often reach the same state (puts of one value to different keys; a read anywhere among
reads), and what can follow depends only on that pair -- which operations are done (a bitset,
here a Python int) and the state. So the search records every (bitset, state) pair it
reaches and never enters one twice. Splitting the history into independent parts first
(`Model.partition`, P-compositionality) shrinks the bitsets and the number of concurrent
choices; the parts are searched one after another.

One more cut, which a model opts into with `Model.is_read_only`: an operation that never
changes the state -- a read -- and fits the state now may as well go now. Take any order of
the rest that works with the read somewhere later; remove the read (everyone else still sees
the same states, since it changed nothing) and put it first, where it fits. Real time allows
that: it could go next, so nothing left returned before it was called. So the search places
such an operation at once and, backing up, tries nothing else in its place but undoes the
choice before it. Without this, every read is also tried after each of the writes that
overlap it, which on a busy key multiplies the search several times over.

The search cannot tell how long it will take: the worst case is exponential (the problem is
NP-complete; Gibbons & Korach 1997). The caller bounds it with ``max_steps`` or a
``should_stop`` callback (which may read a clock: this module does not), and the result is
then `Outcome.UNKNOWN`.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from kv.linearizability.history import Operation
from kv.linearizability.model import Model

State = TypeVar("State", bound=Hashable)
In = TypeVar("In")
Out = TypeVar("Out")

#: ``should_stop`` is asked once every this many steps (it may read a clock: keep that rare).
POLL_EVERY = 1024
#: How many operations of the longest prefix an explanation lists (the last ones).
EXPLAIN_PREFIX = 12


class Outcome(Enum):
    """The verdict of a check."""

    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"  # stopped by max_steps or should_stop before an answer


@dataclass(frozen=True, slots=True)
class Failure:
    """Where the search got furthest in a part it could not linearize.

    Indices are positions in the checked history. The prefix is one of the longest
    linearizable prefixes the search met; it explains the failure well in practice but is
    not unique: another order of the same operations may have failed elsewhere.
    """

    part: tuple[int, ...]  # the operations of the part that failed
    prefix: tuple[int, ...]  # linearizable, in the order the operations take effect
    unplaced: tuple[int, ...]  # the operations that could have come next: none of them fits
    blocking: int  # among them, the first to return: it cannot wait any longer
    state: str  # the model's state after the prefix, described


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict; a linearization of every part, or where the search failed.

    ``linearizations`` holds, for a linearizable history, one order per part (history
    indices, in the order the operations take effect). ``explanation`` is text for a test's
    failure message. ``steps`` counts the search's steps, for budgets and benchmarks.
    """

    outcome: Outcome
    steps: int
    linearizations: tuple[tuple[int, ...], ...] = ()
    failure: Failure | None = None
    explanation: str = ""

    @property
    def linearizable(self) -> bool:
        """True only if the history was shown linearizable (not for `Outcome.UNKNOWN`)."""
        return self.outcome is Outcome.LINEARIZABLE

    def __str__(self) -> str:
        return self.explanation or self.outcome.value


# --8<-- [start:check]
def check(
    model: Model[State, In, Out],
    history: Sequence[Operation[In, Out]],
    *,
    should_stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
    partition: bool = True,
) -> CheckResult:
    """Is ``history`` linearizable with respect to ``model``?

    Args:
        model: the sequential specification.
        history: the operations, in any order.
        should_stop: asked every `POLL_EVERY` steps (and before the first); True stops the
            search with `Outcome.UNKNOWN`. A test's deadline goes here.
        max_steps: stop with `Outcome.UNKNOWN` after this many steps, across all parts.
        partition: search the parts ``model.partition`` returns one by one (False: search
            the whole history at once; the verdict is the same, only slower).

    Raises:
        ValueError: the model's parts do not hold each operation of ``history`` exactly once.
    """
    history = list(history)
    parts = _parts(model, history) if partition else [list(range(len(history)))]
    budget = _Budget(max_steps, should_stop)
    orders: list[tuple[int, ...]] = []
    for number, part in enumerate(parts):
        found = _search(model, [history[index] for index in part], budget)
        if found is None:
            explanation = (
                f"unknown: stopped after {budget.steps} steps, in part {number + 1} of {len(parts)}"
            )
            return CheckResult(Outcome.UNKNOWN, budget.steps, explanation=explanation)
        if isinstance(found, _Deepest):
            failure = Failure(
                part=tuple(part),
                prefix=tuple(part[i] for i in found.prefix),
                unplaced=tuple(part[i] for i in found.candidates),
                blocking=part[found.blocking],
                state=model.describe_state(found.state),
            )
            explanation = _explain(model, history, failure, found, number, len(parts))
            return CheckResult(
                Outcome.NOT_LINEARIZABLE, budget.steps, failure=failure, explanation=explanation
            )
        orders.append(tuple(part[i] for i in found))
    return CheckResult(Outcome.LINEARIZABLE, budget.steps, linearizations=tuple(orders))


# --8<-- [end:check]


def _parts(model: Model[State, In, Out], history: list[Operation[In, Out]]) -> list[list[int]]:
    """The model's partition of ``history`` as lists of history indices."""
    index_of = {id(operation): index for index, operation in enumerate(history)}
    if len(index_of) != len(history):
        raise ValueError("the same Operation object appears twice in the history")
    parts = [
        [index_of.get(id(operation), -1) for operation in part] for part in model.partition(history)
    ]
    placed = sorted(index for part in parts for index in part)
    if placed != list(range(len(history))):
        raise ValueError("the model's partition must hold every operation exactly once")
    return [part for part in parts if part]


class _Budget:
    """Steps taken over all parts, and when to stop."""

    def __init__(self, max_steps: int | None, should_stop: Callable[[], bool] | None) -> None:
        self.steps = 0
        self.max_steps = max_steps
        self.should_stop = should_stop

    def next_limit(self, steps: int) -> int | None:
        """At ``steps``: ``None`` to stop now, else the step count at which to ask again."""
        self.steps = steps
        if self.max_steps is not None and steps >= self.max_steps:
            return None
        if self.should_stop is not None and self.should_stop():
            return None
        limit = steps + POLL_EVERY
        return limit if self.max_steps is None else min(limit, self.max_steps)


@dataclass(frozen=True, slots=True)
class _Frame(Generic[State]):
    """One placed operation on the search's stack, a linked list so that keeping the deepest
    prefix for the explanation costs nothing: the frames below are never changed."""

    call: int  # its call node
    operation: int
    before: State  # the state before it
    forced: bool  # read-only, placed as soon as it fitted: no other choice to try here
    below: _Frame[State] | None
    depth: int

    def order(self) -> tuple[int, ...]:
        """The operations from the bottom of the stack up to this one."""
        operations: list[int] = []
        frame: _Frame[State] | None = self
        while frame is not None:
            operations.append(frame.operation)
            frame = frame.below
        return tuple(reversed(operations))


@dataclass(frozen=True, slots=True)
class _Deepest(Generic[State]):
    """The search's furthest point in a part (indices local to the part)."""

    top: _Frame[State] | None
    state: State
    candidates: tuple[int, ...]
    blocking: int

    @property
    def prefix(self) -> tuple[int, ...]:
        return () if self.top is None else self.top.order()


# --8<-- [start:search]
def _search(
    model: Model[State, In, Out], operations: list[Operation[In, Out]], budget: _Budget
) -> tuple[int, ...] | _Deepest[State] | None:
    """Lowe's search over one part: an order (indices into ``operations``), where it got
    furthest if there is no order, or ``None`` if the budget ran out."""
    count = len(operations)
    # Entry 2i is operation i's call, 2i + 1 its return; calls first at equal times.
    entries = sorted(
        range(2 * count),
        key=lambda e: (operations[e >> 1].end if e & 1 else operations[e >> 1].call_time, e & 1),
    )
    # A doubly linked list of the entries: node 0 is the head, node 2n + 1 the tail.
    head, tail = 0, 2 * count + 1
    following = [*range(1, tail + 1), tail]
    preceding = [0, *range(tail)]
    owner = [0] * (tail + 1)  # node -> its operation
    is_call = [False] * (tail + 1)
    return_of = [0] * (tail + 1)  # call node -> return node
    call_node = [0] * count
    for node, entry in enumerate(entries, start=1):
        owner[node] = entry >> 1
        if entry & 1:
            return_of[call_node[entry >> 1]] = node
        else:
            is_call[node] = True
            call_node[entry >> 1] = node

    def lift(call: int) -> None:
        for node in (call, return_of[call]):
            following[preceding[node]] = following[node]
            preceding[following[node]] = preceding[node]

    def unlift(call: int) -> None:  # the reverse of lift, in reverse order
        for node in (return_of[call], call):
            following[preceding[node]] = node
            preceding[following[node]] = node

    step, inputs = model.step, [operation.input for operation in operations]
    outputs = [operation.output for operation in operations]
    read_only = [model.is_read_only(op.input, op.output) for op in operations]
    state, done = model.init(), 0  # done: bit i set iff operation i is linearized
    top: _Frame[State] | None = None  # the stack of placed operations
    seen: set[tuple[int, State]] = set()
    deepest: _Deepest[State] | None = None
    best, best_saved = 0, False
    steps, limit = budget.steps, budget.steps
    node = following[head]
    while following[head] != tail:
        if steps >= limit:
            next_limit = budget.next_limit(steps)
            if next_limit is None:
                return None
            limit = next_limit
        steps += 1
        if is_call[node]:
            operation = owner[node]
            fits, after = step(state, inputs[operation], outputs[operation])
            if fits:
                now_done = done | (1 << operation)
                if (now_done, after) not in seen:
                    seen.add((now_done, after))
                    depth = 1 if top is None else top.depth + 1
                    top = _Frame(node, operation, state, read_only[operation], top, depth)
                    state, done = after, now_done
                    lift(node)
                    if depth > best:
                        best, best_saved = depth, False
                    node = following[head]
                    continue
            if not (fits and read_only[operation]):
                node = following[node]
                continue
            # A read-only operation that fits: this configuration leads where the one after
            # it leads, and that one was explored and failed (the cache says so).
        elif not best_saved and (0 if top is None else top.depth) == best:
            # owner[node] returned before it took effect, at the furthest point yet: keep it.
            deepest = _Deepest(top, state, _candidates(following, is_call, owner), owner[node])
            best_saved = True
        # Undo the last choice that had alternatives. A read-only operation placed as soon
        # as it fitted had none: if any order of the rest works, one with it first does.
        while True:
            if top is None:
                budget.steps = steps
                assert deepest is not None  # the first step back is at a return
                return deepest
            node, state, forced, top = top.call, top.before, top.forced, top.below
            done &= ~(1 << owner[node])
            unlift(node)
            if not forced:
                break
        node = following[node]
    budget.steps = steps
    return () if top is None else top.order()


# --8<-- [end:search]


def _candidates(following: list[int], is_call: list[bool], owner: list[int]) -> tuple[int, ...]:
    """The operations that could go next: those whose calls come before the first return."""
    candidates, node = [], following[0]
    while is_call[node]:
        candidates.append(owner[node])
        node = following[node]
    return tuple(candidates)


def _explain(
    model: Model[State, In, Out],
    history: list[Operation[In, Out]],
    failure: Failure,
    deepest: _Deepest[State],
    number: int,
    parts: int,
) -> str:
    """A failure, in words a test can print."""

    def describe(index: int) -> str:
        operation = history[index]
        returned = "never returned" if operation.pending else f"returned {operation.return_time}"
        what = model.describe_operation(operation.input, operation.output)
        called = f"client {operation.client_id}, called {operation.call_time}"
        return f"#{index} {what}  ({called}, {returned})"

    where = f" (part {number + 1} of {parts})" if parts > 1 else ""
    lines = [
        f"not linearizable{where}: no order of its {len(failure.part)} operations fits the model.",
        f"Longest linearizable prefix found: {len(failure.prefix)} operations, in order:",
    ]
    shown = failure.prefix[-EXPLAIN_PREFIX:]
    if len(shown) < len(failure.prefix):
        lines.append(f"  ... {len(failure.prefix) - len(shown)} earlier operations")
    start = len(failure.prefix) - len(shown) + 1
    lines += [f"  {position}. {describe(index)}" for position, index in enumerate(shown, start)]
    lines.append(f"State after it: {failure.state}. No operation that may come next fits:")
    for index in failure.unplaced:
        operation = history[index]
        fits, _ = model.step(deepest.state, operation.input, operation.output)
        why = "fits here, but then the rest cannot be ordered" if fits else "does not fit here"
        lines.append(f"  - {describe(index)}: {why}")
    blocking = history[failure.blocking]
    if not blocking.pending:  # (only a model that rejects an unknown output blocks otherwise)
        lines.append(
            f"#{failure.blocking} returned at {blocking.return_time}, so it must have taken"
            " effect by then."
        )
    return "\n".join(lines)
