"""``etcdctl lease`` and ``put --lease``, kv beside the real etcd 3.4 on one member (chapter 7).

Each server chooses its own lease IDs, so a step names the lease ``{lease}`` and the answers are
compared with each server's ID masked (`tests.compat.leases`).
"""

from __future__ import annotations

import pytest

from tests.compat.etcdctl import etcdctl
from tests.compat.leases import grant, grant_on_both, run_lease_steps, wait_until_gone
from tests.compat.scenario import ServerPair, run_scenario
from tests.compat.servers import Server

pytestmark = pytest.mark.etcd


Side = tuple[Server, list[int]]


def granted(pair: ServerPair, ttl: int) -> tuple[Side, Side]:
    """A lease of ``ttl`` granted on both servers (the answers compared): each with its ID."""
    ref, sub = grant_on_both(pair.reference, pair.subject, str(ttl))
    return (pair.reference, [ref.output["ID"]]), (pair.subject, [sub.output["ID"]])


def test_grant_answers_the_ttl_after_the_minimum_and_refuses_a_too_large_one(
    pair: ServerPair,
) -> None:
    for asked in ("10", "1", "0"):
        ref, _ = grant_on_both(pair.reference, pair.subject, asked)
        assert ref.output["TTL"] == max(2, int(asked))
    grant_on_both(pair.reference, pair.subject, "9000000000")
    run_scenario(pair, [["lease", "grant", "9000000001"]])


def test_a_server_chosen_id_starts_with_the_low_16_bits_of_the_member_id(pair: ServerPair) -> None:
    for server in (pair.reference, pair.subject):
        lease_id = grant(server, 10)
        assert lease_id >> 48 == server.member_id & 0x7FFF, f"{server.kind}: {lease_id:x}"


def test_put_with_a_lease_attaches_the_key_and_timetolive_lists_it(pair: ServerPair) -> None:
    ref, sub = granted(pair, 10)
    results = run_lease_steps(
        ref,
        sub,
        [
            ["put", "a", "1", "--lease={lease}"],
            ["put", "b", "2", "--lease={lease}"],
            ["get", "a"],
            ["lease", "timetolive", "{lease}", "--keys"],
            ["lease", "timetolive", "{lease}"],
            ["lease", "list"],
        ],
    )
    assert results[3].output["ttl"] == 9  # remaining, truncated: granted 10, read at once
    assert results[3].output["granted-ttl"] == 10


def test_a_plain_put_detaches_the_key_and_ignore_lease_keeps_it(pair: ServerPair) -> None:
    ref, sub = granted(pair, 10)
    run_lease_steps(
        ref,
        sub,
        [
            ["put", "a", "1", "--lease={lease}"],
            ["put", "b", "1", "--lease={lease}"],
            ["put", "a", "2"],
            ["put", "b", "2", "--ignore-lease"],
            ["put", "c", "2", "--ignore-lease"],
            ["put", "b", "--ignore-value", "--lease={lease}"],
            ["get", "", "--from-key"],
            ["lease", "timetolive", "{lease}", "--keys"],
        ],
    )


def test_keep_alive_once_answers_the_full_ttl(pair: ServerPair) -> None:
    ref, sub = granted(pair, 10)
    results = run_lease_steps(
        ref,
        sub,
        [["lease", "keep-alive", "--once", "{lease}"]],
    )
    assert results[0].output["TTL"] == 10


def test_revoke_deletes_every_key_at_one_revision(pair: ServerPair) -> None:
    ref, sub = granted(pair, 60)
    run_lease_steps(
        ref,
        sub,
        [
            ["put", "z", "1", "--lease={lease}"],
            ["put", "a", "1", "--lease={lease}"],
            ["put", "m", "1", "--lease={lease}"],
            ["put", "other", "1"],
            ["lease", "revoke", "{lease}"],
            ["get", "", "--from-key"],
            ["get", "a", "--rev=5"],
            ["lease", "timetolive", "{lease}"],
            ["lease", "keep-alive", "--once", "{lease}"],
            ["lease", "revoke", "{lease}"],
            ["lease", "list"],
        ],
    )


def test_revoking_a_lease_without_keys_keeps_the_revision(pair: ServerPair) -> None:
    ref, sub = granted(pair, 60)
    results = run_lease_steps(
        ref,
        sub,
        [["put", "k", "v"], ["lease", "revoke", "{lease}"], ["get", "k"]],
    )
    assert results[1].output["header"]["revision"] == 2


def test_unknown_leases(pair: ServerPair) -> None:
    run_scenario(
        pair,
        [
            ["put", "k", "v", "--lease=1234"],
            ["lease", "timetolive", "1234"],
            ["lease", "keep-alive", "--once", "1234"],
            ["lease", "revoke", "1234"],
            ["lease", "list"],
        ],
    )


def test_an_expired_lease_takes_its_keys_at_one_revision(pair: ServerPair) -> None:
    ref, sub = granted(pair, 2)  # the minimum TTL
    run_lease_steps(
        ref,
        sub,
        [["put", "b", "1", "--lease={lease}"], ["put", "a", "1", "--lease={lease}"]],
    )
    for server in (pair.reference, pair.subject):
        took = wait_until_gone(server, "a", timeout=6.0)
        assert took < 4.0, f"{server.kind} took {took:.1f} s"
    run_lease_steps(
        ref,
        sub,
        [["get", "", "--from-key"], ["lease", "timetolive", "{lease}"], ["lease", "list"]],
    )
    for server in (pair.reference, pair.subject):
        assert etcdctl(server.endpoint, ["get", "b", "--rev=3"]).output["kvs"]
