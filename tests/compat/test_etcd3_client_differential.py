"""The python ``etcd3`` client (PyPI etcd3 0.12.0) against kv as against the real etcd 3.4
(chapters 6-8): its lease, watch, txn and lock calls, and members/status, on one member and on
three.

Each scenario (`tests.compat.etcd3_driver`) runs in a process of its own, with
``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` (etcd3 0.12's generated modules need the
pure-Python protobuf under protobuf 7; this process and the servers keep the fast one): first
against the reference, then against the subject. Each prints a transcript, one JSON line per
result; the test normalises it as the rest of the suite does (`tests.compat.normalise`, with each
answer normalised for the member that gave it) and masks the lease IDs the servers chose, numbered
in the order the scenario was granted them (`tests.compat.leases.mask`). The two transcripts must
be equal; each test then states a few of etcd's answers, so that it reads as a specification.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.processes import ProcessCluster
from tests.compat.clusters import cluster_pair
from tests.compat.leases import mask
from tests.compat.normalise import normalise_value
from tests.compat.scenario import ScenarioMismatch, ServerPair, render, side_by_side
from tests.compat.servers import REPO_ROOT, Server

pytestmark = pytest.mark.etcd

#: Client 0's and client 1's member: one member twice, or a follower and the leader.
Places = tuple[Server, Server]

#: A scenario waits for a lease's expiry at most; a driver taking longer is stuck.
DRIVER_TIMEOUT = 120.0


def transcript(scenario: str, places: Places) -> list[tuple[str, Any]]:
    """Run ``scenario`` in the driver against ``places``; its results, normalised and masked.
    A driver that fails or hangs ends the transcript with its exit code and stderr's tail."""
    command = [sys.executable, "-m", "tests.compat.etcd3_driver", scenario]
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    try:
        done = subprocess.run(
            [*command, *(place.endpoint for place in places)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT,
        )
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        stdout, stderr = (_text(expired.stdout), _text(expired.stderr))
        code = f"timed out after {DRIVER_TIMEOUT} s"
    leases: dict[int, str] = {}
    entries: list[tuple[str, Any]] = []
    for line in stdout.splitlines():
        fact = json.loads(line)
        if fact[0] == "lease":
            leases.setdefault(fact[1], f"<lease-{len(leases) + 1}>")
        else:
            _, label, client, value = fact
            entries.append((label, normalise_value(value, places[client])))
    if code != 0:
        entries.append(("the driver failed", [code, stderr.splitlines()[-15:]]))
    return [(label, mask(value, leases)) for label, value in entries]


def _text(output: str | bytes | None) -> str:
    return output.decode() if isinstance(output, bytes) else output or ""


def same_on_both(scenario: str, reference: Places, subject: Places) -> dict[str, Any]:
    """Run ``scenario`` on the reference, then on the subject: the transcripts must be equal.
    Returns etcd's results by label."""
    __tracebackhide__ = True
    ref = transcript(scenario, reference)
    if ref and ref[-1][0] == "the driver failed":
        raise AssertionError(f"{scenario} failed against the real etcd: {render(ref[-1][1])}")
    sub = transcript(scenario, subject)
    if ref != sub:
        table = side_by_side(
            render(ref), render(sub), "reference etcd", f"subject {subject[0].kind}"
        )
        raise ScenarioMismatch(f"etcd3 scenario {scenario} differs:\n{table}")
    return dict(ref)


def on_one(pair: ServerPair) -> tuple[Places, Places]:
    return (pair.reference,) * 2, (pair.subject,) * 2


# -- one member ---------------------------------------------------------------------------------


def test_leases_grant_attach_refresh_and_revoke(pair: ServerPair) -> None:
    got = same_on_both("leases", *on_one(pair))
    assert got["granted ttl"] == 60
    assert got["keys"] == ["k1", "k2"]
    assert got["get shows the lease"][1]["lease"] == "<lease-1>"
    assert got["remaining_ttl"] == "granted-1..granted"
    assert got["refresh"][0]["TTL"] == "60"
    assert got["a chosen ID"] == [0x1234, 30]
    assert got["the same ID again"]["details"] == "etcdserver: lease already exists"
    assert got["a TTL under the minimum"] == 2  # etcd's minimum: 1.5 election timeouts, rounded up
    assert got["a TTL over the maximum"]["details"] == "etcdserver: too large lease TTL"
    assert got["put with an unknown lease"]["details"] == "etcdserver: requested lease not found"
    assert got["its keys are gone"] == []
    assert got["remaining_ttl after revoke"] == -1
    assert got["revoke again"]["code"] == "NOT_FOUND"


def test_watches_see_puts_deletes_history_and_compaction(pair: ServerPair) -> None:
    got = same_on_both("watches", *on_one(pair))
    assert [event["class"] for event in got["watch saw"]] == ["PutEvent", "PutEvent", "DeleteEvent"]
    by_revision = got["watch_prefix saw, one response a revision"]
    assert [len(response["events"]) for response in by_revision] == [1, 1, 2]
    replayed = got["replay from revision 2 with prev_kv"]
    assert replayed[0]["events"][1]["prev_kv"]["value"] == "1"
    assert got["watch_once times out"] == {"error": "WatchTimedOut"}
    assert got["add_watch_callback"] + 1 == got["add_watch_callback again"]
    assert got["its callback got"]["error"] == "RevisionCompactedError"


def test_transactions_compare_and_branch(pair: ServerPair) -> None:
    got = same_on_both("transactions", *on_one(pair))
    assert got["value =="][0] is True
    assert got["value != (fails)"][0] is False
    assert got["create == 0 (fails)"][0] is False
    assert got["duplicate key"]["details"] == "etcdserver: duplicate key given in txn request"
    assert [got["put_if_not_exists"], got["put_if_not_exists again"]] == [True, False]
    assert [got["replace"], got["replace with a stale value"]] == [True, False]


def test_a_lock_is_acquired_refreshed_and_released(pair: ServerPair) -> None:
    got = same_on_both("lock_alone", *on_one(pair))
    assert got["acquire"] is True and got["is_acquired"] is True
    assert got["the lock's key"][0] == "<uuid-A>"
    assert got["another Lock times out"] is False
    assert [got["release"], got["release again"]] == [True, False]
    assert got["gone after the with block"] == [None, None]


def test_a_second_client_waits_for_the_lock_and_gets_it_on_release(pair: ServerPair) -> None:
    got = same_on_both("lock_contention", *on_one(pair))
    assert [got["1 times out"], got["1 acquires"]] == [False, True]
    assert got["the lock's key"][0] == "<uuid-B>"
    assert got["the lock's key"][1]["lease"] == "<lease-2>"


def test_a_lock_whose_lease_expires_passes_to_the_waiting_client(pair: ServerPair) -> None:
    got = same_on_both("lock_expiry", *on_one(pair))
    assert got["1 acquires once 0's lease expired"] is True
    assert [got["0 is_acquired"], got["0's release fails"]] == [False, False]
    assert "TTL" not in got["0's refresh"][0]  # TTL 0: the lease is gone
    assert got["the lock's key"][1]["mod_revision"] == 4  # 0's put, the expiry, 1's put


def test_members_and_status(pair: ServerPair) -> None:
    got = same_on_both("members", *on_one(pair))
    assert [member["name"] for member in got["members"]] == ["compat"]
    got = same_on_both("status", *on_one(pair))
    assert got["status"]["leader is a member"] is True


# -- three members ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Places, Places]]:
    """A 3-member etcd and a 3-member subject; client 0 on a follower, client 1 on the leader.
    The scenarios run one after another on the same clusters, in the same order on both."""
    with cluster_pair(tmp_path_factory.mktemp("etcd3-clusters")) as (reference, subject):
        yield places_of(reference), places_of(subject)


def places_of(cluster: ProcessCluster) -> Places:
    leader, _ = asyncio.run(cluster.agreed_leader())
    follower = next(member for member in cluster.members if member is not leader)
    return follower, leader


@pytest.mark.parametrize(
    "scenario",
    ["leases", "watches", "transactions", "lock_alone", "lock_contention", "lock_expiry", "status"],
)
def test_on_three_members(clusters: tuple[Places, Places], scenario: str) -> None:
    same_on_both(scenario, *clusters)
