"""The lessor's rules, one behaviour per test (etcd: ``lease/lessor.go``, ``lessor_test.go``).

Time is a number passed in: a test says "at 10.0" and the lessor believes it.
"""

from __future__ import annotations

import pytest

from kv.lease import (
    FOREVER_SECONDS,
    MAX_TTL,
    LeaseExistsError,
    LeaseExpiredError,
    LeaseNotFoundError,
    LeaseTTLTooLargeError,
    Lessor,
    NotPrimaryError,
    min_ttl,
    server_chosen_id,
)

MIN_TTL = 2  # etcd's default: 1.5 election timeouts of 1 s, rounded up


def leader(now: float = 0.0, extend: float = 1.0) -> Lessor:
    lessor = Lessor(MIN_TTL, retry_seconds=7.0)
    lessor.promote(now, extend)
    return lessor


# -- the TTL's bounds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("election_ms", "heartbeat_ms", "expected"),
    [(1000, 100, 2), (500, 100, 1), (1000, 300, 2), (5000, 100, 8), (150, 10, 1)],
)
def test_the_minimum_ttl_is_one_and_a_half_election_timeouts_in_whole_ticks_rounded_up(
    election_ms: int, heartbeat_ms: int, expected: int
) -> None:
    # 1000/300: 3 ticks -> 3*3//2 = 4 ticks of 300 ms = 1.2 s -> 2 s.
    assert min_ttl(election_ms, heartbeat_ms) == expected


@pytest.mark.parametrize("asked", [1, 0, -5])
def test_a_ttl_below_the_minimum_is_granted_as_the_minimum(asked: int) -> None:
    assert Lessor(MIN_TTL).grant(7, asked, now=0.0).ttl == MIN_TTL


def test_the_largest_ttl_is_granted_and_one_more_is_refused() -> None:
    lessor = Lessor(MIN_TTL)
    assert lessor.grant(1, MAX_TTL, now=0.0).ttl == 9_000_000_000
    with pytest.raises(LeaseTTLTooLargeError, match=r"^too large lease TTL$"):
        lessor.grant(2, MAX_TTL + 1, now=0.0)
    assert 2 not in lessor


# -- IDs ----------------------------------------------------------------------------------


def test_a_client_may_choose_any_nonzero_id_negative_ones_included() -> None:
    lessor = Lessor(MIN_TTL)
    for lease_id in (1, -1, -(2**63), 2**63 - 1):
        lessor.grant(lease_id, 10, now=0.0)
    assert sorted(lease.id for lease in lessor) == [-(2**63), -1, 1, 2**63 - 1]


def test_granting_an_id_that_exists_is_refused_and_changes_nothing() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(5, 10, now=0.0)
    with pytest.raises(LeaseExistsError, match=r"^lease already exists$"):
        lessor.grant(5, 60, now=0.0)
    lease = lessor.lookup(5)
    assert lease is not None and lease.ttl == 10


def test_a_server_chosen_id_is_the_next_request_id_with_the_top_bit_cleared() -> None:
    # Member 0x8e9e05c52164694d: the ID starts with its low 16 bits, 0x694d.
    request_ids = iter([0x694D_0123456789_01 | 1 << 63, 0x694D_0123456789_02])
    assert server_chosen_id(lambda: next(request_ids)) == 0x694D_0123456789_01


def test_a_server_chosen_id_is_never_zero() -> None:
    request_ids = iter([1 << 63, 5])  # the first would be 0 once bit 63 is cleared
    assert server_chosen_id(lambda: next(request_ids)) == 5


# -- keys ---------------------------------------------------------------------------------


def test_a_key_written_with_a_lease_is_attached_to_it() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(1, 10, now=0.0)
    lessor.set_key(b"a", 1)
    assert lessor.lease_of(b"a") == 1
    lease = lessor.lookup(1)
    assert lease is not None and lease.keys == {b"a"}


def test_writing_a_key_with_another_lease_moves_it() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(1, 10, now=0.0)
    lessor.grant(2, 10, now=0.0)
    lessor.set_key(b"a", 1)
    lessor.set_key(b"a", 2)
    assert [sorted(lease.keys) for lease in lessor] == [[], [b"a"]]


def test_a_plain_put_or_a_delete_detaches_the_key() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(1, 10, now=0.0)
    lessor.set_key(b"a", 1)
    lessor.set_key(b"a", 0)
    assert lessor.lease_of(b"a") == 0
    assert lessor.revoke(1) == []


def test_revoke_returns_the_keys_in_sorted_order_and_forgets_the_lease() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(1, 10, now=0.0)
    for key in (b"zeta", b"alpha", b"mid"):
        lessor.set_key(key, 1)
    assert lessor.revoke(1) == [b"alpha", b"mid", b"zeta"]
    assert 1 not in lessor
    assert lessor.lease_of(b"alpha") == 0


def test_revoking_an_unknown_lease_is_refused() -> None:
    with pytest.raises(LeaseNotFoundError, match=r"^lease not found$"):
        Lessor(MIN_TTL).revoke(3)


def test_a_restored_lease_gets_the_minimum_ttl_of_this_member() -> None:
    assert Lessor(5).restore(9, 2).ttl == 5


# -- the leader's clock -------------------------------------------------------------------


def test_a_follower_lease_never_expires() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(1, 10, now=0.0)
    lease = lessor.lookup(1)
    assert lease is not None and lease.expiry is None
    assert lease.remaining_ttl(now=1e9) == FOREVER_SECONDS
    assert lessor.expired(now=1e9) == []


def test_a_follower_does_not_renew() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(1, 10, now=0.0)
    with pytest.raises(NotPrimaryError):
        lessor.renew(1, now=0.0)


def test_on_the_leader_a_grant_expires_its_ttl_after_now_without_extension() -> None:
    lessor = leader(extend=1.0)
    lease = lessor.grant(1, 10, now=100.0)
    assert lease.expiry == 110.0


def test_the_remaining_ttl_is_truncated_so_a_fresh_lease_of_10_reads_9() -> None:
    lease = leader().grant(1, 10, now=100.0)
    assert lease.remaining_ttl(now=100.001) == 9
    assert lease.remaining_ttl(now=110.5) == 0  # expired, not revoked yet: 0, not -1


def test_renew_restarts_the_ttl_from_now_and_answers_the_full_ttl() -> None:
    lessor = leader()
    lessor.grant(1, 10, now=0.0)
    assert lessor.renew(1, now=8.0) == 10
    lease = lessor.lookup(1)
    assert lease is not None and lease.expiry == 18.0


def test_renewing_an_unknown_lease_is_not_found() -> None:
    with pytest.raises(LeaseNotFoundError):
        leader().renew(4, now=0.0)


def test_renewing_an_expired_lease_not_yet_revoked_must_wait_for_the_revoke() -> None:
    lessor = leader()
    lessor.grant(1, 10, now=0.0)
    with pytest.raises(LeaseExpiredError):
        lessor.renew(1, now=10.0)


def test_a_lease_is_handed_out_for_revoke_once_its_deadline_has_passed() -> None:
    lessor = leader()
    lessor.grant(1, 10, now=0.0)
    lessor.grant(2, 15, now=0.0)
    assert lessor.expired(now=9.9) == []
    assert lessor.expired(now=10.0) == [1]
    assert lessor.expired(now=15.0) == [2]


def test_an_expired_lease_still_there_after_the_retry_interval_is_handed_out_again() -> None:
    lessor = leader()  # retry_seconds=7
    lessor.grant(1, 10, now=0.0)
    assert lessor.expired(now=10.0) == [1]
    assert lessor.expired(now=16.9) == []  # the revoke is on its way
    assert lessor.expired(now=17.0) == [1]  # it was lost: propose again


def test_a_revoked_lease_is_not_handed_out() -> None:
    lessor = leader()
    lessor.grant(1, 10, now=0.0)
    lessor.revoke(1)
    assert lessor.expired(now=100.0) == []


def test_a_renewed_lease_is_not_handed_out_at_its_old_deadline() -> None:
    lessor = leader()
    lessor.grant(1, 10, now=0.0)
    lessor.renew(1, now=5.0)
    assert lessor.expired(now=12.0) == []
    assert lessor.expired(now=15.0) == [1]


def test_one_pass_hands_out_at_most_the_limit_and_the_rest_next_time() -> None:
    lessor = leader()
    for lease_id in range(1, 8):
        lessor.grant(lease_id, 10, now=0.0)
    first = lessor.expired(now=11.0, limit=5)
    second = lessor.expired(now=11.0, limit=5)
    assert len(first) == 5 and sorted(first + second) == list(range(1, 8))


def test_promotion_gives_every_lease_its_ttl_plus_the_extension_from_now() -> None:
    lessor = Lessor(MIN_TTL)
    lessor.grant(1, 10, now=0.0)  # granted on a follower: no expiry
    lessor.promote(now=50.0, extend=1.0)
    lease = lessor.lookup(1)
    assert lease is not None and lease.expiry == 61.0
    assert lease.remaining_ttl(now=50.0) == 11  # "a 10 s lease can read 11"


def test_a_demoted_lessor_forgets_every_deadline() -> None:
    lessor = leader()
    lessor.grant(1, 10, now=0.0)
    lessor.demote()
    assert not lessor.is_primary
    assert lessor.expired(now=100.0) == []
    lease = lessor.lookup(1)
    assert lease is not None and lease.expiry is None


def test_a_lease_granted_before_a_leader_change_expires_at_the_new_leaders_extended_deadline() -> (
    None
):
    old, new = leader(now=0.0), Lessor(MIN_TTL)
    for lessor in (old, new):  # the grant is applied on both
        lessor.grant(1, 10, now=0.0)
    old.demote()  # the old leader is deposed at 4.0; the new one leads from 6.0
    new.promote(now=6.0, extend=1.0)
    assert old.expired(now=10.0) == [] and new.expired(now=10.0) == []
    assert new.expired(now=16.9) == []
    assert new.expired(now=17.0) == [1]


def test_leases_are_listed_soonest_to_expire_first() -> None:
    lessor = leader()
    lessor.grant(1, 30, now=0.0)
    lessor.grant(2, 10, now=0.0)
    lessor.grant(3, 20, now=0.0)
    assert [lease.id for lease in lessor.leases(now=0.0)] == [2, 3, 1]


def test_promotion_spreads_a_pile_of_expiries_over_seconds() -> None:
    lessor = Lessor(MIN_TTL)
    for lease_id in range(1, 2001):
        lessor.grant(lease_id, 10, now=0.0)
    lessor.promote(now=0.0, extend=1.0)
    expiries = sorted(lease.expiry or 0.0 for lease in lessor)
    # 750 a second at most: the first 750 at 11 s, the rest pushed later.
    assert expiries[749] == 11.0 and expiries[750] > 11.0
    assert max(expiries) > 12.0
    within_first_second = sum(1 for expiry in expiries if expiry < 12.0)
    assert within_first_second <= 1500
