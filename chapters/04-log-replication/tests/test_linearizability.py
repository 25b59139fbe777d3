"""The linearizability checker (``kv/linearizability/``): the judge of every replication test.

A checker that says "linearizable" too easily hides the bugs the Raft chapters look for, and
one that cries wolf makes their tests useless, so both directions are pinned down here: small
hand-made histories with a known verdict (a test each), random histories made from real
sequential executions (always linearizable), mutated ones judged the same with and without
partitioning by key and the same as a brute-force search over every order, and a history of
a few thousand operations that must check quickly.
"""

from __future__ import annotations

import ast
import importlib.util
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kv.linearizability import (
    Call,
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
    Operation,
    Outcome,
    Put,
    PutResult,
    Recorder,
    Return,
    Value,
    check,
    history_from_events,
)

KvOperation = Operation[KvInput, KvOutput]
VALUES_ONLY = KeyValueModel()
WITH_REVISIONS = KeyValueModel(check_revisions=True)


def op(
    client: int, call: float, ret: float | None, input: KvInput, output: KvOutput | None = None
) -> KvOperation:
    return Operation(client, call, ret, input, output)


def verdict(history: Sequence[KvOperation], model: KeyValueModel = VALUES_ONLY) -> Outcome:
    return check(model, history).outcome


# Linearizable histories ------------------------------------------------------------------


def test_a_sequential_history_is_linearizable_in_its_own_order() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, Get("a"), GetResult("1")),
        op(2, 4, 5, Delete("a"), DeleteResult(1)),
        op(2, 6, 7, Get("a"), GetResult(None)),
    ]
    result = check(VALUES_ONLY, history)
    assert result.linearizable, result
    assert result.linearizations == ((0, 1, 2, 3),)


def test_a_read_overlapping_a_put_may_see_the_new_value() -> None:
    history = [op(1, 0, 10, Put("a", "1"), PutResult()), op(2, 2, 5, Get("a"), GetResult("1"))]
    assert verdict(history) is Outcome.LINEARIZABLE


def test_a_read_overlapping_a_put_may_see_the_old_value() -> None:
    history = [op(1, 0, 10, Put("a", "1"), PutResult()), op(2, 2, 5, Get("a"), GetResult(None))]
    assert verdict(history) is Outcome.LINEARIZABLE


def test_reads_that_order_concurrent_puts_the_same_way_are_linearizable() -> None:
    history = [
        op(1, 0, 10, Put("a", "1"), PutResult()),
        op(2, 0, 10, Put("a", "2"), PutResult()),
        op(3, 1, 2, Get("a"), GetResult("1")),
        op(3, 3, 4, Get("a"), GetResult("2")),
        op(4, 1, 2, Get("a"), GetResult("1")),
        op(4, 5, 6, Get("a"), GetResult("2")),
        op(5, 11, 12, Get("a"), GetResult("2")),
    ]
    assert verdict(history) is Outcome.LINEARIZABLE


def test_a_put_that_never_returned_may_have_taken_effect() -> None:
    history = [op(1, 0, None, Put("a", "1")), op(2, 2, 3, Get("a"), GetResult("1"))]
    assert verdict(history) is Outcome.LINEARIZABLE


def test_a_put_that_never_returned_may_not_have_taken_effect() -> None:
    history = [
        op(1, 0, None, Put("a", "1")),
        op(2, 2, 3, Get("a"), GetResult(None)),
        op(2, 4, 5, Get("a"), GetResult(None)),
    ]
    assert verdict(history) is Outcome.LINEARIZABLE


def test_operations_that_touch_at_one_instant_count_as_concurrent() -> None:
    # The read is called at the instant the put returns: with a clock that coarse the read
    # may still have gone first, so this is no violation.
    history = [op(1, 0, 5, Put("a", "1"), PutResult()), op(2, 5, 6, Get("a"), GetResult(None))]
    assert verdict(history) is Outcome.LINEARIZABLE


def test_the_empty_history_is_linearizable() -> None:
    assert check(VALUES_ONLY, []).linearizable


# Histories that are not linearizable ----------------------------------------------------


def test_a_stale_read_after_a_completed_put_is_not_linearizable() -> None:
    history = [op(1, 0, 1, Put("a", "1"), PutResult()), op(2, 2, 3, Get("a"), GetResult(None))]
    assert verdict(history) is Outcome.NOT_LINEARIZABLE


def test_two_readers_seeing_concurrent_puts_in_opposite_orders_is_not_linearizable() -> None:
    history = [
        op(1, 0, 10, Put("a", "1"), PutResult()),
        op(2, 0, 10, Put("a", "2"), PutResult()),
        op(3, 1, 2, Get("a"), GetResult("1")),
        op(3, 3, 4, Get("a"), GetResult("2")),
        op(4, 1, 2, Get("a"), GetResult("2")),
        op(4, 3, 4, Get("a"), GetResult("1")),
    ]
    assert verdict(history) is Outcome.NOT_LINEARIZABLE


def test_reading_a_value_never_written_is_not_linearizable() -> None:
    history = [op(1, 0, 10, Put("a", "1"), PutResult()), op(2, 2, 5, Get("a"), GetResult("2"))]
    assert verdict(history) is Outcome.NOT_LINEARIZABLE


def test_reading_a_deleted_value_after_the_delete_completed_is_not_linearizable() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, Delete("a"), DeleteResult(1)),
        op(2, 4, 5, Get("a"), GetResult("1")),
    ]
    assert verdict(history) is Outcome.NOT_LINEARIZABLE


def test_a_value_once_read_cannot_vanish_even_if_its_put_never_returned() -> None:
    history = [
        op(1, 0, None, Put("a", "1")),
        op(2, 2, 3, Get("a"), GetResult("1")),
        op(2, 4, 5, Get("a"), GetResult(None)),
    ]
    assert verdict(history) is Outcome.NOT_LINEARIZABLE


def test_a_delete_must_say_whether_the_key_existed() -> None:
    history = [op(1, 0, 1, Put("a", "1"), PutResult()), op(1, 2, 3, Delete("a"), DeleteResult(0))]
    assert verdict(history) is Outcome.NOT_LINEARIZABLE


def test_a_compare_and_set_succeeds_exactly_when_the_value_matches() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, CompareAndSet("a", "2", "3"), CompareAndSetResult(False)),
        op(1, 4, 5, CompareAndSet("a", "1", "3"), CompareAndSetResult(True)),
        op(1, 6, 7, Get("a"), GetResult("3")),
    ]
    assert verdict(history) is Outcome.LINEARIZABLE


def test_a_compare_and_set_that_succeeded_against_a_value_not_there_is_not_linearizable() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(2, 2, 3, CompareAndSet("a", None, "2"), CompareAndSetResult(True)),
    ]
    assert verdict(history) is Outcome.NOT_LINEARIZABLE


# Revisions ---------------------------------------------------------------------------------

REVISION_BACKWARDS = [
    op(1, 0, 1, Put("a", "1"), PutResult(2)),
    op(1, 2, 3, Put("b", "1"), PutResult(3)),
    op(2, 4, 5, Get("a"), GetResult("1", revision=2)),  # the store was at 3 already
]


def test_a_revision_going_backwards_is_not_linearizable_when_revisions_are_checked() -> None:
    assert verdict(REVISION_BACKWARDS, WITH_REVISIONS) is Outcome.NOT_LINEARIZABLE


def test_revisions_are_ignored_when_not_checked() -> None:
    assert verdict(REVISION_BACKWARDS, VALUES_ONLY) is Outcome.LINEARIZABLE


def test_revisions_order_concurrent_puts_on_different_keys() -> None:
    history = [
        op(1, 0, 10, Put("a", "1"), PutResult(3)),
        op(2, 0, 10, Put("b", "1"), PutResult(2)),
        op(3, 1, 2, Get("a"), GetResult("1", revision=2)),  # a was put after b
    ]
    assert verdict(history, WITH_REVISIONS) is Outcome.NOT_LINEARIZABLE


def test_a_write_that_changes_nothing_takes_no_revision() -> None:
    # etcd: deleting a missing key or a failed compare leaves the store's revision alone.
    history = [
        op(1, 0, 1, Delete("a"), DeleteResult(0, revision=1)),
        op(1, 2, 3, CompareAndSet("a", "1", "2"), CompareAndSetResult(False, revision=1)),
        op(1, 4, 5, Put("a", "1"), PutResult(2)),
    ]
    assert verdict(history, WITH_REVISIONS) is Outcome.LINEARIZABLE


# The result ----------------------------------------------------------------------------------


def test_a_failure_names_the_longest_prefix_and_the_operation_that_could_not_be_placed() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(2, 2, 3, Get("a"), GetResult("1")),
        op(3, 4, 5, Get("a"), GetResult(None)),
    ]
    result = check(VALUES_ONLY, history)
    assert result.failure is not None
    assert (result.failure.prefix, result.failure.unplaced, result.failure.blocking) == (
        (0, 1),
        (2,),
        2,
    )
    assert "#2 get('a') -> (none)" in result.explanation, result.explanation
    assert "State after it: {'a': '1'}" in result.explanation, result.explanation


def test_a_failure_in_one_key_reports_that_keys_operations_only() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, Put("b", "1"), PutResult()),
        op(2, 4, 5, Get("a"), GetResult("1")),
        op(2, 6, 7, Get("b"), GetResult("2")),
    ]
    result = check(VALUES_ONLY, history)
    assert result.failure is not None
    assert result.failure.part == (1, 3)
    assert result.failure.prefix == (1,)


def test_running_out_of_steps_gives_unknown() -> None:
    history = [op(1, 2 * i, 2 * i + 1, Put("a", str(i)), PutResult()) for i in range(10)]
    result = check(VALUES_ONLY, history, max_steps=5)
    assert (result.outcome, result.steps) == (Outcome.UNKNOWN, 5)


def test_should_stop_gives_unknown() -> None:
    history = [op(1, 0, 1, Put("a", "1"), PutResult())]
    assert check(VALUES_ONLY, history, should_stop=lambda: True).outcome is Outcome.UNKNOWN


def test_should_stop_is_asked_once_per_thousand_steps_not_every_step() -> None:
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return False

    history = [op(1, 2 * i, 2 * i + 1, Put("a", str(i)), PutResult()) for i in range(3000)]
    result = check(VALUES_ONLY, history, should_stop=should_stop)
    assert result.linearizable
    assert asked == 3  # before step 0, 1024 and 2048 of 3000


# Partitioning ----------------------------------------------------------------------------------


def test_a_values_model_partitions_by_key_keeping_the_order() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, Put("b", "1"), PutResult()),
        op(1, 4, 5, Get("a"), GetResult("1")),
    ]
    assert VALUES_ONLY.partition(history) == [[history[0], history[2]], [history[1]]]


def test_a_model_that_checks_revisions_does_not_partition() -> None:
    history = [op(1, 0, 1, Put("a", "1"), PutResult(2)), op(1, 2, 3, Put("b", "1"), PutResult(3))]
    assert WITH_REVISIONS.partition(history) == [history]


def test_a_partition_that_loses_an_operation_is_rejected() -> None:
    class Lossy(KeyValueModel):
        def partition(self, history: Sequence[KvOperation]) -> list[list[KvOperation]]:
            return [list(history[1:])]

    history = [op(1, 0, 1, Put("a", "1"), PutResult()), op(1, 2, 3, Put("b", "1"), PutResult())]
    with pytest.raises(ValueError, match="exactly once"):
        check(Lossy(), history)


# Building histories -------------------------------------------------------------------------


def test_history_from_events_uses_positions_as_times() -> None:
    events: list[Call[KvInput] | Return[KvOutput]] = [
        Call(0, client_id=1, input=Put("a", "1")),
        Call(1, client_id=2, input=Get("a")),
        Return(0, PutResult()),
        Return(1, GetResult("1")),
    ]
    assert history_from_events(events) == [
        op(1, 0, 2, Put("a", "1"), PutResult()),
        op(2, 1, 3, Get("a"), GetResult("1")),
    ]


def test_history_from_events_leaves_a_call_without_a_return_pending() -> None:
    events: list[Call[KvInput] | Return[KvOutput]] = [Call(0, 1, Put("a", "1"), time=7.5)]
    assert history_from_events(events) == [op(1, 7.5, None, Put("a", "1"))]


def test_history_from_events_rejects_a_return_without_a_call() -> None:
    with pytest.raises(ValueError, match="before it is called"):
        history_from_events([Return(3, PutResult())])


def test_the_recorder_builds_the_history_in_call_order() -> None:
    recorder: Recorder[KvInput, KvOutput] = Recorder()
    first = recorder.call(1, Put("a", "1"), time=0.5)
    recorder.call(2, Get("a"), time=0.7)
    recorder.returned(first, PutResult(2), time=0.9)
    assert recorder.history() == [
        op(1, 0.5, 0.9, Put("a", "1"), PutResult(2)),
        op(2, 0.7, None, Get("a")),
    ]


def test_an_operation_cannot_return_before_it_is_called() -> None:
    with pytest.raises(ValueError, match="before it is called"):
        op(1, 5, 4, Get("a"), GetResult(None))


def test_an_operation_that_never_returned_has_no_output() -> None:
    with pytest.raises(ValueError, match="no output"):
        op(1, 5, None, Get("a"), GetResult(None))


def test_an_infinite_return_time_means_never_returned() -> None:
    assert op(1, 0, float("inf"), Put("a", "1")).pending


def test_an_output_of_the_wrong_kind_is_a_bug_in_the_history() -> None:
    with pytest.raises(TypeError, match="GetResult"):
        check(VALUES_ONLY, [op(1, 0, 1, Get("a"), PutResult())])


# Random histories -------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """An operation before it runs: its interval, and the instant it takes effect."""

    client: int
    call: int
    effect: int
    ret: int | None  # None: the client never hears back
    applied: bool  # for an operation that never returned: did it take effect?
    input: KvInput


def execute(planned: Sequence[Planned]) -> list[KvOperation]:
    """Run the operations one at a time in the order of their effect instants, as one correct
    copy of the store would, and record what each client was told (with revisions)."""
    values: dict[Key, Value] = {}
    revision = 1
    outputs: dict[int, KvOutput] = {}
    for index in sorted(range(len(planned)), key=lambda i: (planned[i].effect, i)):
        if not planned[index].applied:
            continue
        match planned[index].input:
            case Get(key):
                outputs[index] = GetResult(values.get(key), revision)
            case Put(key, value):
                values[key], revision = value, revision + 1
                outputs[index] = PutResult(revision)
            case Delete(key):
                existed = values.pop(key, None) is not None
                revision += existed
                outputs[index] = DeleteResult(int(existed), revision)
            case CompareAndSet(key, expected, new):
                succeeded = values.get(key) == expected
                if succeeded:
                    values[key], revision = new, revision + 1
                outputs[index] = CompareAndSetResult(succeeded, revision)
    return [
        op(p.client, p.call, p.ret, p.input, None if p.ret is None else outputs[i])
        for i, p in enumerate(planned)
    ]


KEY, VALUE = st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"])
INPUT: st.SearchStrategy[KvInput] = st.one_of(
    st.builds(Get, KEY),
    st.builds(Put, KEY, VALUE),
    st.builds(Delete, KEY),
    st.builds(CompareAndSet, KEY, st.none() | VALUE, VALUE),
)
# call time, duration, effect instant (clipped into the interval), returned?, applied anyway?
PLAN = st.tuples(
    st.integers(0, 30), st.integers(0, 12), st.integers(0, 12), st.integers(0, 5), st.booleans()
)
REVISION = st.none() | st.integers(1, 12)


@st.composite
def executions(draw: st.DrawFn, max_operations: int = 10) -> list[KvOperation]:
    """A real sequential execution observed through random, overlapping intervals; one in six
    operations never returns, and half of those took effect anyway."""
    planned = []
    for client in range(draw(st.integers(1, max_operations))):
        call, length, effect, returned, applied = draw(PLAN)
        ret = call + length if returned else None
        effect = call + min(effect, length)
        planned.append(Planned(client, call, effect, ret, bool(returned) or applied, draw(INPUT)))
    return execute(planned)


def mutated_output(output: KvOutput, draw: st.DrawFn) -> KvOutput:
    match output:
        case GetResult():
            return GetResult(draw(st.none() | VALUE), draw(REVISION))
        case PutResult():
            return PutResult(draw(REVISION))
        case DeleteResult():
            return DeleteResult(draw(st.none() | st.integers(0, 1)), draw(REVISION))
        case CompareAndSetResult():
            return CompareAndSetResult(draw(st.booleans()), draw(REVISION))


@st.composite
def mutated_executions(draw: st.DrawFn, max_operations: int = 10) -> list[KvOperation]:
    """An execution with one or two answers changed: often, not always, not linearizable."""
    history = draw(executions(max_operations))
    for _ in range(draw(st.integers(1, 2))):
        index = draw(st.integers(0, len(history) - 1))
        output = history[index].output
        if output is not None:
            history[index] = replace(history[index], output=mutated_output(output, draw))
    return history


def brute_force(model: KeyValueModel, history: Sequence[KvOperation]) -> bool:
    """Linearizability by definition: some subset of the operations that never returned took
    effect, and some order of those and all returned ones respects real time and the model."""

    def ordered(remaining: frozenset[int], state: KvState) -> bool:
        if not remaining:
            return True
        first_return = min(history[i].end for i in remaining)
        for i in remaining:
            if history[i].call_time <= first_return:
                fits, after = model.step(state, history[i].input, history[i].output)
                if fits and ordered(remaining - {i}, after):
                    return True
        return False

    returned = [i for i, operation in enumerate(history) if not operation.pending]
    pending = [i for i, operation in enumerate(history) if operation.pending]
    return any(
        ordered(frozenset(returned) | frozenset(took_effect), model.init())
        for size in range(len(pending) + 1)
        for took_effect in combinations(pending, size)
    )


@settings(max_examples=200, deadline=None)
@given(executions())
def test_a_real_execution_seen_through_overlapping_intervals_is_linearizable(
    history: list[KvOperation],
) -> None:
    assert verdict(history, VALUES_ONLY) is Outcome.LINEARIZABLE
    assert verdict(history, WITH_REVISIONS) is Outcome.LINEARIZABLE


@settings(max_examples=200, deadline=None)
@given(st.one_of(executions(12), mutated_executions(12)))
def test_partitioning_by_key_does_not_change_the_verdict(history: list[KvOperation]) -> None:
    whole = check(VALUES_ONLY, history, partition=False)
    assert check(VALUES_ONLY, history).outcome is whole.outcome


@settings(max_examples=200, deadline=None)
@given(mutated_executions(6), st.sampled_from([VALUES_ONLY, WITH_REVISIONS]))
def test_the_checker_agrees_with_a_brute_force_search_of_every_order(
    history: list[KvOperation], model: KeyValueModel
) -> None:
    assert check(model, history).linearizable == brute_force(model, history)


# Performance ----------------------------------------------------------------------------------


def simulate(seed: int, clients: int, operations: int, keys: int) -> list[KvOperation]:
    """Clients that each send one request at a time for random durations, against one correct
    store: a busy, fully linearizable history."""
    rng = random.Random(seed)
    planned = []
    for client in range(clients):
        now = 0
        for _ in range(operations // clients):
            call = now + rng.randint(0, 3)
            ret = call + rng.randint(1, 20)
            key, value = f"k{rng.randrange(keys)}", str(rng.randrange(5))
            roll = rng.random()
            input: KvInput = Get(key)
            if roll > 0.9:
                input = CompareAndSet(key, str(rng.randrange(5)), value)
            elif roll > 0.8:
                input = Delete(key)
            elif roll > 0.5:
                input = Put(key, value)
            planned.append(Planned(client, call, rng.randint(call, ret), ret, True, input))
            now = ret
    return execute(planned)


def test_a_few_thousand_operations_on_ten_keys_check_in_well_under_a_second() -> None:
    seed = 4
    history = simulate(seed, clients=10, operations=3000, keys=10)
    started = time.perf_counter()
    result = check(VALUES_ONLY, history)
    elapsed = time.perf_counter() - started
    assert result.linearizable, f"seed {seed}: {result}"
    assert elapsed < 1.0, f"seed {seed}: {len(history)} operations took {elapsed:.2f}s"


class WithoutReadOnlyHint(KeyValueModel):
    def is_read_only(self, input: KvInput, output: KvOutput | None) -> bool:
        return False


def test_placing_reads_once_cuts_the_search_on_a_busy_key() -> None:
    seed = 0
    history = simulate(seed, clients=10, operations=500, keys=1)
    with_hint = check(VALUES_ONLY, history)
    without = check(WithoutReadOnlyHint(), history)
    assert with_hint.linearizable and without.linearizable, f"seed {seed}"
    assert with_hint.steps * 3 < without.steps, f"seed {seed}: {with_hint.steps} vs {without.steps}"


# Purity -------------------------------------------------------------------------------------

FORBIDDEN = frozenset({"asyncio", "grpc", "socket", "os", "time", "threading", "random"})


def imported_modules(tree: ast.AST) -> list[str]:
    """Every absolute import in ``tree``, wherever it is (in a function, under TYPE_CHECKING)."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_the_checker_imports_nothing_that_does_io_or_reads_clocks() -> None:
    spec = importlib.util.find_spec("kv.linearizability")
    assert spec is not None and spec.origin is not None
    offending = [
        f"{module.name} imports {name}"
        for module in sorted(Path(spec.origin).parent.glob("*.py"))
        for name in imported_modules(ast.parse(module.read_text(encoding="utf-8")))
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not offending, "kv.linearizability must stay pure: " + "; ".join(offending)
