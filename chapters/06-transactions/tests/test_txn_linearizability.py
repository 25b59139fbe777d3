"""The checker's model of multi-key transactions (``kv/linearizability/txn.py``).

Each test is a small history with a known verdict: a txn's compares see one state, its writes
land together at one revision, and a history where another client sees half a txn, or a
branch that could not have run, is rejected. Partitioning joins the keys a txn ties together
and must give the verdict the unpartitioned search gives.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from kv.linearizability import Get, GetResult, Operation, Put, PutResult, check
from kv.linearizability.txn import (
    Compare,
    StoreModel,
    Target,
    Txn,
    TxnDelete,
    TxnPut,
    TxnResult,
)

MODEL = StoreModel()
WITH_REVISIONS = StoreModel(check_revisions=True)


def op(client: int, call: float, ret: float | None, input: Any, output: Any = None) -> Any:
    return Operation(client, call, ret, input, output)


def swap(a_expected: str, a_new: str, b_new: str) -> Txn:
    """``if a == a_expected then a = a_new, b = b_new``."""
    compare = Compare("a", Target.VALUE, a_expected)
    return Txn((compare,), (TxnPut("a", a_new), TxnPut("b", b_new)))


def test_a_txn_whose_compare_held_writes_every_key_of_its_success_branch() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, swap("1", "2", "x"), TxnResult(True)),
        op(2, 4, 5, Get("b"), GetResult("x")),
        op(2, 6, 7, Get("a"), GetResult("2")),
    ]
    assert check(MODEL, history).linearizable


def test_a_reader_that_sees_half_a_txn_is_rejected() -> None:
    # b was written, so the txn ran; a read of a after it that misses the txn's put of a is
    # not linearizable, even though each key alone looks fine.
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, swap("1", "2", "x"), TxnResult(True)),
        op(2, 4, 5, Get("b"), GetResult("x")),
        op(2, 6, 7, Get("a"), GetResult("1")),
    ]
    result = check(MODEL, history)
    assert not result.linearizable, result
    assert not check(MODEL, history, partition=False).linearizable


def test_a_txn_that_reports_success_when_its_compare_could_not_hold_is_rejected() -> None:
    history = [
        op(1, 0, 1, Put("a", "1"), PutResult()),
        op(1, 2, 3, swap("0", "2", "x"), TxnResult(True)),
    ]
    assert not check(MODEL, history).linearizable


def test_the_failure_branch_runs_when_a_compare_fails() -> None:
    txn = Txn((Compare("a", Target.VALUE, "0"),), (TxnPut("b", "yes"),), (TxnDelete("c"),))
    history = [
        op(1, 0, 1, Put("c", "1"), PutResult()),
        op(1, 2, 3, txn, TxnResult(False)),
        op(2, 4, 5, Get("c"), GetResult(None)),
        op(2, 6, 7, Get("b"), GetResult(None)),
    ]
    assert check(MODEL, history).linearizable
    stale = [*history[:2], op(2, 4, 5, Get("c"), GetResult("1"))]
    assert not check(MODEL, stale).linearizable


def test_a_version_compare_counts_puts_since_creation_and_zero_means_absent() -> None:
    created = Txn((Compare("a", Target.VERSION, 0),), (TxnPut("a", "first"),))
    second = Txn((Compare("a", Target.VERSION, 2),), (TxnPut("b", "two puts"),))
    history = [
        op(1, 0, 1, created, TxnResult(True)),
        op(1, 2, 3, Put("a", "again"), PutResult()),
        op(1, 4, 5, second, TxnResult(True)),
        op(1, 6, 7, created, TxnResult(False)),
    ]
    assert check(MODEL, history).linearizable
    wrong = [*history[:2], op(1, 4, 5, second, TxnResult(False))]
    assert not check(MODEL, wrong).linearizable


def test_a_value_compare_on_a_missing_key_is_false() -> None:
    txn = Txn((Compare("a", Target.VALUE, ""),), (TxnPut("b", "1"),))
    assert not check(MODEL, [op(1, 0, 1, txn, TxnResult(True))]).linearizable
    assert check(MODEL, [op(1, 0, 1, txn, TxnResult(False))]).linearizable


def test_a_txn_writes_all_its_keys_at_one_revision() -> None:
    txn = Txn((), (TxnPut("a", "1"), TxnPut("b", "1")))
    mod = Txn((Compare("b", Target.MOD, 2),), (TxnPut("c", "1"),))
    history = [
        op(1, 0, 1, txn, TxnResult(True, revision=2)),
        op(1, 2, 3, mod, TxnResult(True, revision=3)),
    ]
    assert check(WITH_REVISIONS, history).linearizable
    two_revisions = [op(1, 0, 1, txn, TxnResult(True, revision=3))]
    assert not check(WITH_REVISIONS, two_revisions).linearizable


def test_a_mod_compare_needs_the_model_that_tracks_revisions() -> None:
    txn = Txn((Compare("a", Target.MOD, 0),), (TxnPut("a", "1"),))
    with pytest.raises(ValueError, match="check_revisions"):
        check(MODEL, [op(1, 0, 1, txn, TxnResult(True))])


def test_partitioning_joins_the_keys_a_txn_ties_together_and_no_others() -> None:
    history = [
        op(1, 0, 1, swap("1", "2", "x"), TxnResult(False)),
        op(2, 0, 1, Put("c", "1"), PutResult()),
        op(3, 0, 1, Get("b"), GetResult(None)),
    ]
    parts = MODEL.partition(history)
    assert sorted(len(part) for part in parts) == [1, 2]


def test_a_txn_that_never_returned_may_take_effect_late_or_never() -> None:
    history = [
        op(1, 0, None, swap("1", "2", "x")),
        op(2, 0, 1, Put("a", "1"), PutResult()),
        op(2, 2, 3, Get("b"), GetResult(None)),
        op(2, 4, 5, Get("b"), GetResult("x")),
        op(2, 6, 7, Get("a"), GetResult("2")),
    ]
    assert check(MODEL, history).linearizable


@pytest.mark.parametrize("seed", range(30))
def test_partitioned_and_whole_searches_agree_on_random_txn_histories(seed: int) -> None:
    rng = random.Random(seed)
    history = _random_history(rng)
    whole = check(MODEL, history, partition=False)
    parts = check(MODEL, history)
    assert whole.outcome is parts.outcome, f"seed {seed}: {whole} / {parts}"


def _random_history(rng: random.Random) -> list[Any]:
    """Operations run one by one on the model, then some answers flipped and times blurred."""
    state, history = MODEL.init(), []
    for time in range(12):
        key, other = rng.sample(["a", "b", "c", "d"], 2)
        value = str(rng.randrange(3))
        choice = rng.randrange(3)
        input: Any = (
            Get(key)
            if choice == 0
            else Put(key, value)
            if choice == 1
            else Txn(
                (Compare(key, Target.VALUE, value),), (TxnPut(other, value),), (TxnDelete(key),)
            )
        )
        output: Any = {0: GetResult(None), 1: PutResult(), 2: TxnResult(False)}[choice]
        for candidate in _outputs(input):
            fits, after = MODEL.step(state, input, candidate)
            if fits:
                output, state = candidate, after
                break
        if rng.random() < 0.1 and isinstance(output, GetResult):
            output = GetResult(value)
        start = time * 2 - rng.randrange(3)
        history.append(op(time % 3, start, time * 2 + 1, input, output))
    return history


def _outputs(input: Any) -> list[Any]:
    if isinstance(input, Get):
        return [GetResult(v) for v in (None, "0", "1", "2")]
    if isinstance(input, Put):
        return [PutResult()]
    return [TxnResult(True), TxnResult(False)]
