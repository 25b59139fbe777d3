"""The leader's revoke steps (`kv.lease.expiry`), one rule each: the same steps the server's
loop and the simulator run."""

from __future__ import annotations

from kv.lease import CHECK_SECONDS, MAX_PENDING_REVOKES, Expiry, Lessor, Revoke


def primary_with_leases(count: int, ttl: int = 10) -> Lessor:
    lessor = Lessor(min_ttl=1)
    lessor.promote(now=0.0, extend=0.0)
    for lease_id in range(1, count + 1):
        lessor.grant(lease_id, ttl, now=0.0)
    return lessor


def test_a_pass_starts_a_revoke_for_each_lease_past_its_deadline_in_the_leaders_term() -> None:
    lessor = primary_with_leases(2)
    assert Expiry().check(lessor, term=4, now=10.0) == [Revoke(1, 4), Revoke(2, 4)]


def test_a_pass_before_the_deadline_starts_nothing() -> None:
    assert Expiry().check(primary_with_leases(2), term=4, now=9.9) == []


def test_at_most_max_pending_revokes_run_at_once_and_each_finished_one_starts_the_next() -> None:
    expiry = Expiry()
    started = expiry.check(primary_with_leases(MAX_PENDING_REVOKES + 2), term=1, now=10.0)
    assert len(started) == MAX_PENDING_REVOKES == expiry.running
    assert expiry.finished(started[0]) == [Revoke(MAX_PENDING_REVOKES + 1, 1)]
    assert expiry.finished(started[1]) == [Revoke(MAX_PENDING_REVOKES + 2, 1)]
    assert expiry.finished(started[2]) == [] and expiry.running == MAX_PENDING_REVOKES - 1


def test_a_revoke_is_proposed_only_by_a_leader_still_in_the_term_it_decided_in() -> None:
    expiry, revoke = Expiry(), Revoke(7, term=3)
    assert expiry.confirmed(revoke, leading_term=3)
    assert not expiry.confirmed(revoke, leading_term=None)  # deposed (etcd #15247)
    assert not expiry.confirmed(revoke, leading_term=5)  # led again since, in a later term


def test_a_pass_is_due_every_check_interval() -> None:
    expiry = Expiry()
    assert expiry.due(100.0)
    assert not expiry.due(100.0 + CHECK_SECONDS / 2)
    assert expiry.due(100.0 + CHECK_SECONDS)
