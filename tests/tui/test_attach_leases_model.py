"""The LEASES tab's model (`tui.attach.leases`), pure: countdowns between polls, leases that
leave, the cap. Times are plain numbers; no cluster, no clock."""

from __future__ import annotations

from kv.api.etcdserverpb import rpc_pb2
from tui.attach.leases import Countdown, LeaseBook, keys_preview, lease_hex


def answer(
    lease_id: int, ttl: int, granted: int = 10, keys: tuple[bytes, ...] = ()
) -> rpc_pb2.LeaseTimeToLiveResponse:
    return rpc_pb2.LeaseTimeToLiveResponse(ID=lease_id, TTL=ttl, grantedTTL=granted, keys=keys)


def test_a_lease_id_is_printed_as_etcdctl_does_in_sixteen_hex_digits() -> None:
    assert lease_hex(0x694D7A8C2A4B2F0A) == "694d7a8c2a4b2f0a"
    assert lease_hex(0x1234) == "0000000000001234"


def test_the_countdown_goes_down_with_the_local_clock_between_answers() -> None:
    countdown = Countdown(left=10.0, since=100.0)
    assert countdown.remaining(100.0) == 10.0
    assert countdown.remaining(102.5) == 7.5


def test_the_countdown_never_goes_below_zero() -> None:
    assert Countdown(left=2.0, since=0.0).remaining(5.0) == 0.0


def test_an_answer_within_the_rounding_of_the_countdown_does_not_make_it_jump() -> None:
    countdown = Countdown(left=10.0, since=0.0)
    countdown.answer(7, now=2.5)  # 7.5 left: etcd rounds it down to 7
    assert countdown.remaining(2.5) == 7.5


def test_a_renewed_lease_restarts_its_countdown_from_the_answer() -> None:
    countdown = Countdown(left=10.0, since=0.0)
    countdown.answer(10, now=5.0)  # a keepalive came: 10 left, not 5
    assert countdown.remaining(5.0) == 10.0


def test_an_answer_below_the_countdown_corrects_it_down() -> None:
    countdown = Countdown(left=10.0, since=0.0)
    countdown.answer(3, now=2.0)
    assert countdown.remaining(2.0) == 3.0


def test_a_listed_lease_is_shown_with_its_granted_ttl_and_keys() -> None:
    book = LeaseBook()
    assert book.update([answer(7, 9, granted=10, keys=(b"a", b"b"))], asked_at=0.0) == []
    (row,) = book.shown()
    assert (row.hex_id, row.granted_ttl, row.keys) == ("0000000000000007", 10, [b"a", b"b"])
    assert row.countdown.remaining(4.0) == 5.0


def test_a_lease_not_answered_or_answered_with_minus_one_leaves_the_book() -> None:
    book = LeaseBook()
    book.update([answer(1, 5), answer(2, 5), answer(3, 5)], asked_at=0.0)
    gone = book.update([answer(1, 4), answer(3, -1)], asked_at=1.0)
    assert sorted(gone) == [2, 3]
    assert [row.lease_id for row in book.shown()] == [1]


def test_a_lease_granted_again_under_the_same_id_starts_a_new_countdown() -> None:
    book = LeaseBook()
    book.update([answer(1, 3, granted=5)], asked_at=0.0)
    book.update([answer(1, 60, granted=60)], asked_at=1.0)
    (row,) = book.shown()
    assert (row.granted_ttl, row.countdown.remaining(1.0)) == (60, 60.0)


def test_leases_over_the_cap_are_not_asked_about_and_are_counted_as_hidden() -> None:
    book = LeaseBook(cap=2)
    assert book.to_ask([5, 3, 9, 1]) == [1, 3]
    assert book.hidden == 2
    assert book.to_ask([5]) == [5]
    assert book.hidden == 0


def test_the_rows_are_in_id_order() -> None:
    book = LeaseBook()
    book.update([answer(9, 5), answer(2, 5)], asked_at=0.0)
    assert [row.lease_id for row in book.shown()] == [2, 9]


def test_a_revoked_lease_is_forgotten_at_once() -> None:
    book = LeaseBook()
    book.update([answer(1, 5)], asked_at=0.0)
    book.forget(1)
    assert book.shown() == []


def test_the_keys_are_counted_and_the_first_few_named() -> None:
    assert keys_preview([]) == "0"
    assert keys_preview([b"a", b"b"]) == "2: a, b"
    assert keys_preview([b"a", b"b", b"c", b"d", b"e"]) == "5: a, b, c +2"
