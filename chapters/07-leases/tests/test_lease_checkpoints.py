"""Lease checkpoints, one behaviour per test (etcd 3.4: ``lease/lessor.go``, PRs #9924 and
#14253; `kv.lease.checkpoint`).

Time is a number passed in. The checkpoint interval is etcd's 300 s unless a test says
otherwise, and "every member applies it" is played by calling `Lessor.checkpoint` on each
lessor, as the apply layer does for a LeaseCheckpoint entry.
"""

from __future__ import annotations

import pytest

from kv.lease import CHECKPOINT_INTERVAL, Checkpoint, Checkpointing, Lessor
from kv.lease.schedule import Schedule

MIN_TTL = 2
EXTEND = 1.0  # a new leader's extension: one election timeout


def member(*, interval: float = CHECKPOINT_INTERVAL) -> Lessor:
    return Lessor(MIN_TTL, retry_seconds=7.0, checkpointing=Checkpointing(interval))


def leader(now: float = 0.0) -> Lessor:
    lessor = member()
    lessor.promote(now, EXTEND)
    return lessor


def apply_everywhere(members: list[Lessor], checkpoints: list[Checkpoint], now: float) -> None:
    """A LeaseCheckpoint entry, applied on every member."""
    for lessor in members:
        for checkpoint in checkpoints:
            lessor.checkpoint(checkpoint.lease_id, checkpoint.remaining_ttl, now)


def grant_everywhere(members: list[Lessor], lease_id: int, ttl: int, now: float) -> None:
    for lessor in members:
        lessor.grant(lease_id, ttl, now)


def ttl_on_the_next_leader(first: Lessor, second: Lessor, lease_id: int = 1) -> int:
    """``first`` is deposed and ``second`` leads from t=320: the lease's TTL there."""
    first.demote()
    second.promote(now=320.0, extend=EXTEND)
    lease = second.lookup(lease_id)
    assert lease is not None
    return lease.remaining_ttl(now=320.0)


def test_the_default_interval_is_etcds_five_minutes() -> None:
    assert CHECKPOINT_INTERVAL == 300.0


def test_a_long_lease_is_checkpointed_one_interval_after_its_grant_with_its_remaining_ttl() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=10.0)
    assert lessor.due_checkpoints(now=309.9) == []
    # 1000 - 300.5 s = 699.5 s left, rounded up as etcd does (math.Ceil).
    assert lessor.due_checkpoints(now=310.5) == [Checkpoint(1, 700)]
    assert lessor.due_checkpoints(now=310.5) == []  # handed out once


def test_a_lease_of_at_most_one_interval_is_never_checkpointed() -> None:
    lessor = leader()
    lessor.grant(1, 300, now=0.0)  # "remaining > interval" is false at 300
    lessor.grant(2, 60, now=0.0)
    assert lessor.due_checkpoints(now=299.0) == []
    assert lessor.due_checkpoints(now=10_000.0) == []


def test_without_checkpointing_no_lease_is_ever_checkpointed() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.promote(0.0, EXTEND)
    lessor.grant(1, 10_000, now=0.0)
    assert lessor.due_checkpoints(now=5_000.0) == []
    assert lessor.renewal_checkpoint(1, now=1.0) is None


def test_a_followers_lessor_proposes_no_checkpoint() -> None:
    follower = member()
    follower.grant(1, 1000, now=0.0)
    assert follower.due_checkpoints(now=5_000.0) == []


def test_every_member_records_the_checkpointed_remaining_ttl() -> None:
    first, follower = leader(), member()
    grant_everywhere([first, follower], 1, 1000, now=0.0)
    apply_everywhere([first, follower], first.due_checkpoints(now=300.0), now=300.0)
    for lessor in (first, follower):
        lease = lessor.lookup(1)
        assert lease is not None and lease.checkpoint_ttl == 700 and lease.resume_ttl == 700


def test_a_new_leader_counts_from_the_checkpoint_not_from_the_full_ttl() -> None:
    first, second = leader(), member()
    grant_everywhere([first, second], 1, 1000, now=0.0)
    apply_everywhere([first, second], first.due_checkpoints(now=300.0), now=300.0)
    # 700 s from the checkpoint, plus the extension: not 1000 + 1.
    assert ttl_on_the_next_leader(first, second) == 701


def test_without_a_checkpoint_a_new_leader_gives_the_full_ttl_again() -> None:
    first, second = leader(), member()
    grant_everywhere([first, second], 1, 1000, now=0.0)
    assert ttl_on_the_next_leader(first, second) == 1001


def test_applying_a_checkpoint_on_the_leader_schedules_the_next_one() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    apply_everywhere([lessor], lessor.due_checkpoints(now=300.0), now=300.0)
    assert lessor.due_checkpoints(now=599.0) == []
    assert lessor.due_checkpoints(now=600.0) == [Checkpoint(1, 400)]


def test_the_chain_stops_once_a_checkpoint_leaves_at_most_one_interval() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    for moment in (300.0, 600.0):
        apply_everywhere([lessor], lessor.due_checkpoints(now=moment), now=moment)
    lease = lessor.lookup(1)
    assert lease is not None and lease.checkpoint_ttl == 400
    apply_everywhere([lessor], lessor.due_checkpoints(now=900.0), now=900.0)  # 100 s left
    assert lessor.due_checkpoints(now=5_000.0) == []


def test_a_new_leader_schedules_checkpoints_for_the_leases_it_inherits() -> None:
    # etcd before PR #14253 (3.4.20) stopped checkpointing after the first leader change.
    second = member()
    second.grant(1, 1000, now=0.0)
    second.promote(now=50.0, extend=EXTEND)
    assert second.due_checkpoints(now=349.0) == []
    assert second.due_checkpoints(now=350.0) == [Checkpoint(1, 701)]


def test_renewing_a_checkpointed_lease_first_clears_its_checkpoint() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    apply_everywhere([lessor], lessor.due_checkpoints(now=300.0), now=300.0)
    assert lessor.renewal_checkpoint(1, now=310.0) == Checkpoint(1, 0)


def test_renewing_a_lease_without_a_checkpoint_writes_nothing_to_the_log() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    assert lessor.renewal_checkpoint(1, now=10.0) is None
    assert lessor.renewal_checkpoint(99, now=10.0) is None  # unknown: the renewal says so


def test_a_renewal_gives_the_full_ttl_even_to_a_checkpointed_lease() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    apply_everywhere([lessor], lessor.due_checkpoints(now=300.0), now=300.0)
    assert lessor.renew(1, now=310.0) == 1000
    lease = lessor.lookup(1)
    assert lease is not None and lease.remaining_ttl(now=310.0) == 1000


def test_after_a_cleared_checkpoint_a_new_leader_gives_the_full_ttl() -> None:
    first, second = leader(), member()
    grant_everywhere([first, second], 1, 1000, now=0.0)
    apply_everywhere([first, second], first.due_checkpoints(now=300.0), now=300.0)
    clear = first.renewal_checkpoint(1, now=310.0)
    assert clear is not None
    apply_everywhere([first, second], [clear], now=310.0)
    first.renew(1, now=310.0)
    assert ttl_on_the_next_leader(first, second) == 1001


def test_a_renewed_lease_whose_checkpoint_comes_due_with_its_full_ttl_left_is_skipped() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    lessor.renew(1, now=300.0)  # renewed just as its checkpoint is due: 1000 s left
    assert lessor.due_checkpoints(now=300.0) == []


def test_an_expired_lease_is_not_checkpointed() -> None:
    lessor = member(interval=5.0)
    lessor.promote(0.0, EXTEND)
    lessor.grant(1, 8, now=0.0)  # expires at 8; its checkpoint is due at 5
    assert lessor.due_checkpoints(now=9.0) == []


def test_a_revoked_lease_is_not_checkpointed() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    lessor.revoke(1)
    assert lessor.due_checkpoints(now=300.0) == []


def test_a_checkpoint_of_a_lease_revoked_meanwhile_is_ignored() -> None:
    lessor = leader()
    assert lessor.checkpoint(42, 700, now=300.0) is None


def test_a_demoted_leader_forgets_its_scheduled_checkpoints() -> None:
    lessor = leader()
    lessor.grant(1, 1000, now=0.0)
    lessor.demote()
    assert lessor.due_checkpoints(now=300.0) == []


def test_one_call_hands_out_at_most_the_batch_limit_and_the_rest_next_time() -> None:
    lessor = leader()
    for lease_id in range(1, 8):
        lessor.grant(lease_id, 1000, now=0.0)
    first = lessor.due_checkpoints(now=300.0, limit=5)
    second = lessor.due_checkpoints(now=300.0, limit=5)
    assert len(first) == 5 and sorted(c.lease_id for c in first + second) == list(range(1, 8))


@pytest.mark.parametrize(("persisted", "expected"), [(700, 701), (0, 1001)])
def test_a_restored_lease_resumes_from_its_persisted_checkpoint_or_else_its_full_ttl(
    persisted: int, expected: int
) -> None:
    restarted = member()
    restarted.restore(1, 1000, checkpoint_ttl=persisted)
    restarted.promote(now=0.0, extend=EXTEND)
    lease = restarted.lookup(1)
    assert lease is not None and lease.remaining_ttl(now=0.0) == expected


def test_a_schedule_keeps_only_the_newest_time_of_an_id() -> None:
    schedule = Schedule()
    schedule.set(1, 10.0)
    schedule.set(1, 30.0)
    schedule.set(2, 20.0)
    assert schedule.pop_due(25.0) == 2
    assert schedule.pop_due(25.0) is None  # 1's time of 10 was replaced by 30
    assert schedule.pop_due(30.0) == 1 and len(schedule) == 0
