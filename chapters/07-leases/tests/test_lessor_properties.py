"""Properties of the lessor over random histories (Hypothesis): whatever the order of grants,
writes, renewals, revokes and leader changes, its bookkeeping stays consistent and no lease is
handed out for revoke before its deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from kv.lease import LeaseError, Lessor

KEYS = [b"a", b"b", b"c", b"d"]
IDS = [-2, -1, 1, 2, 3]


@dataclass(frozen=True)
class Step:
    kind: str
    lease_id: int
    key: bytes
    ttl: int
    advance: float


steps = st.builds(
    Step,
    kind=st.sampled_from(
        ["grant", "revoke", "put", "detach", "renew", "promote", "demote", "check"]
    ),
    lease_id=st.sampled_from(IDS),
    key=st.sampled_from(KEYS),
    ttl=st.integers(-3, 30),
    advance=st.floats(0.0, 5.0, allow_nan=False),
)


def run(lessor: Lessor, history: list[Step]) -> float:
    """Play ``history``, checking the bookkeeping after each step; return the time it ends."""
    now = 0.0
    for step in history:
        now += step.advance
        try:
            match step.kind:
                case "grant":
                    lessor.grant(step.lease_id, step.ttl, now)
                case "revoke":
                    for key in lessor.revoke(step.lease_id):
                        lessor.set_key(key, 0)  # the revoke's deletes
                case "put":
                    if step.lease_id in lessor:
                        lessor.set_key(step.key, step.lease_id)
                case "detach":
                    lessor.set_key(step.key, 0)
                case "renew":
                    lessor.renew(step.lease_id, now)
                case "promote":
                    lessor.promote(now, extend=1.0)
                case "demote":
                    lessor.demote()
                case "check":
                    lessor.expired(now)
        except LeaseError:
            pass
        check_bookkeeping(lessor)
    return now


def check_bookkeeping(lessor: Lessor) -> None:
    for lease in lessor:
        assert lease.ttl >= lessor.min_ttl
        for key in lease.keys:
            assert lessor.lease_of(key) == lease.id
        assert (lease.expiry is not None) == lessor.is_primary
    for key in KEYS:
        owner = lessor.lease_of(key)
        if owner:
            found = lessor.lookup(owner)
            assert found is not None and key in found.keys


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=60))
def test_every_key_belongs_to_at_most_one_live_lease_and_the_lease_knows_it(
    history: list[Step],
) -> None:
    run(Lessor(2), history)


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=60))
def test_a_lease_is_handed_out_only_when_its_deadline_has_passed(history: list[Step]) -> None:
    lessor = Lessor(2)
    now = 0.0
    for step in history:
        now += step.advance
        if step.kind == "check":
            for lease_id in lessor.expired(now):
                lease = lessor.lookup(lease_id)
                assert lease is not None and lease.expiry is not None and lease.expiry <= now
            continue
        try:
            if step.kind == "grant":
                lessor.grant(step.lease_id, step.ttl, now)
            elif step.kind == "renew":
                lessor.renew(step.lease_id, now)
            elif step.kind == "revoke":
                lessor.revoke(step.lease_id)
            elif step.kind == "promote":
                lessor.promote(now, extend=1.0)
            elif step.kind == "demote":
                lessor.demote()
        except LeaseError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=60))
def test_a_leader_that_keeps_checking_hands_out_every_expired_lease(history: list[Step]) -> None:
    lessor = Lessor(2)
    lessor.promote(0.0, extend=1.0)
    end = run(lessor, [step for step in history if step.kind not in ("demote", "promote")])
    latest = max([end, *((lease.expiry or 0.0) for lease in lessor)])
    # A lease handed out before is due again a retry interval after that.
    found = set(lessor.expired(latest + lessor.retry_seconds, limit=len(IDS)))
    assert found == {lease.id for lease in lessor}
