"""The crash tests' checker catches what it must: lost, invented, partial and unordered writes.

A checker that never fails proves nothing, so it is tested on its own, without a server: a
short history of requests, then observations of a recovered store, right and wrong.
"""

from __future__ import annotations

from dataclasses import replace

from tests.crash.harness import (
    KeyState,
    Model,
    Observation,
    Op,
    Outcome,
    Verdict,
    check_recovery,
)

A, B, C = b"crash/w00/k0", b"crash/w01/k0", b"crash/w02/k0"


def acked(op: Op, revision: int, deleted: int = 0) -> Op:
    return replace(op, outcome=Outcome.ACKED, revision=revision, deleted=deleted)


# Revision 1 is the fresh store. a=1 at 2, b=1 at 3, a deleted at 4, a compaction at 3; then an
# unanswered put of a=2 and an unanswered compaction at 4.
OPS = [
    acked(Op("put", A, b"a1", floor=1), 2),
    acked(Op("put", B, b"b1", floor=1), 3),
    acked(Op("delete", A, floor=3), 4, deleted=1),
    acked(Op("compact", compact_to=3, floor=4), 4),
    Op("put", A, b"a2", floor=4),
    Op("compact", compact_to=4, floor=4),
]
B1 = KeyState(b"b1", 3, 3, 1)


def check(observation: Observation, ops: list[Op] = OPS) -> Verdict:
    return check_recovery(Model(), ops, observation)


def obs(
    revision: int = 4, compact: int = 3, keys: dict[bytes, KeyState] | None = None
) -> Observation:
    """What the recovered store shows; by default exactly the acknowledged writes."""
    return Observation(revision, compact, 0, {B: B1} if keys is None else keys)


def test_a_recovery_with_every_acknowledged_write_passes() -> None:
    verdict = check(obs())
    assert verdict.problems == []
    assert verdict.applied_unanswered == 0
    assert verdict.model.keys == {B: B1}
    # b's put at 3 is kept for historic reads; a's put at 2 is below the compaction at 3.
    assert verdict.model.reads == {(B, 3): B1, (A, 4): None}


def test_an_unanswered_put_may_have_happened_if_it_is_whole() -> None:
    verdict = check(obs(5, 4, {A: KeyState(b"a2", 5, 5, 1), B: B1}))
    assert verdict.problems == []
    assert verdict.applied_unanswered == 1
    assert verdict.model.reads[A, 5] == KeyState(b"a2", 5, 5, 1)


def test_an_unanswered_put_that_is_not_whole_is_reported() -> None:
    verdict = check(obs(5, 3, {A: KeyState(b"a2", 2, 5, 2), B: B1}))
    assert any("not whole" in problem for problem in verdict.problems)


def test_a_lost_acknowledged_put_is_reported() -> None:
    verdict = check(obs(keys={}))
    assert any(problem.startswith(f"LOST: {B!r}") for problem in verdict.problems)


def test_an_acknowledged_put_with_another_value_is_reported() -> None:
    verdict = check(obs(keys={B: KeyState(b"b0", 3, 3, 1)}))
    assert any(problem.startswith(f"LOST: {B!r}") for problem in verdict.problems)


def test_a_key_back_after_an_acknowledged_delete_is_reported() -> None:
    verdict = check(obs(keys={A: KeyState(b"a1", 2, 2, 1), B: B1}))
    assert any("should not exist" in problem for problem in verdict.problems)


def test_a_key_nobody_wrote_is_reported() -> None:
    verdict = check(obs(5, keys={B: B1, C: KeyState(b"?", 5, 5, 1)}))
    assert any(repr(C) in problem and "should not exist" in problem for problem in verdict.problems)


def test_a_revision_below_an_acknowledged_one_is_reported() -> None:
    verdict = check(obs(3))
    assert any("revision 4 was acknowledged" in problem for problem in verdict.problems)


def test_a_revision_nobody_asked_for_is_reported() -> None:
    verdict = check(obs(6))
    assert any("unexplained" in problem for problem in verdict.problems)


def test_a_lost_acknowledged_compaction_is_reported() -> None:
    verdict = check(obs(compact=-1))
    assert any("compaction revision is -1" in problem for problem in verdict.problems)


def test_an_unanswered_compaction_may_have_happened() -> None:
    assert check(obs(compact=4)).problems == []


def test_an_answer_out_of_order_is_reported() -> None:
    ops = [acked(Op("put", A, b"a1", floor=5), 2)]  # revision 5 was acknowledged before it was sent
    verdict = check_recovery(Model(revision=5), ops, obs(6, -1, {A: KeyState(b"a1", 2, 2, 1)}))
    assert any("not after revision 5" in problem for problem in verdict.problems)


def test_a_delete_that_deleted_nothing_of_a_key_that_was_there_is_reported() -> None:
    ops = [acked(Op("put", A, b"a1", floor=1), 2), acked(Op("delete", A, floor=2), 2)]
    verdict = check(obs(2, -1, {}), ops)
    assert any("should have deleted 1" in problem for problem in verdict.problems)
