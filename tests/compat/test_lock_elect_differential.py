"""``etcdctl lock``, ``etcdctl elect`` and the streaming ``etcdctl lease keep-alive``, kv beside
the real etcd 3.4, on one member and on three (chapters 7 and 8).

lock and elect are etcd's client-side recipes (a session lease kept alive, a txn on the key's
create revision, a watch for the deletion of the key before it), not the v3lock/v3election
services. Each scenario runs the same etcdctl processes against the reference and then against
the subject, in the same order, and the two normalised transcripts (`tests.compat.sessions`:
session lease IDs numbered, everything else as printed) must be equal. The revisions printed
prove the waiting: a second locker's answer carries the revision of the first one's release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster.processes import ProcessCluster
from tests.compat.conftest import cluster_pair
from tests.compat.leases import grant_on_both, mask
from tests.compat.scenario import ScenarioMismatch, ServerPair, render, side_by_side
from tests.compat.servers import Server
from tests.compat.sessions import Transcript, wait_for_keys
from tests.compat.streaming import EtcdctlProcess

pytestmark = pytest.mark.etcd

#: Where a scenario's processes run: the first session, the second one, the observer.
Places = tuple[Server, Server, Server]
Scenario = Callable[[Places], list[tuple[str, Any]]]


def same_on_both(scenario: Scenario, reference: Places, subject: Places) -> list[Any]:
    """Run ``scenario`` on the reference, then on the subject: the transcripts must be equal."""
    __tracebackhide__ = True
    ref, sub = scenario(reference), scenario(subject)
    if ref != sub:
        table = side_by_side(
            render(ref), render(sub), "reference etcd", f"subject {subject[0].kind}"
        )
        raise ScenarioMismatch(f"{scenario.__name__} differs:\n{table}")
    return [value for _, value in ref]


def on_one(pair: ServerPair) -> tuple[Places, Places]:
    return (pair.reference,) * 3, (pair.subject,) * 3


def stop(*processes: EtcdctlProcess | None) -> None:
    for process in processes:
        if process is not None:
            process.stop()


# -- scenarios ----------------------------------------------------------------------------------


def lock_released_by_ctrl_c(places: Places) -> list[tuple[str, Any]]:
    """A holds L; B waits; Ctrl-C on A releases it (A deletes its key) and B gets it."""
    first, second, _ = places
    run = Transcript("L")
    holder = EtcdctlProcess(first, ["lock", "L"])
    waiter = None
    try:
        run.lines("A acquires", holder, 1)
        waiter = EtcdctlProcess(second, ["lock", "L"])  # after A holds L: B is second
        wait_for_keys(first, "L/", 2)  # B's session key is in: B now waits for A's deletion
        run.note("B printed nothing while A held the lock", waiter.printed_nothing_more())
        run.exited("A on Ctrl-C", holder)
        run.lines("B acquires", waiter, 1)
        run.exited("B on Ctrl-C", waiter)
        run.get("after both", first, "L", "--prefix")
    finally:
        stop(holder, waiter)
    return run.normalised()


def lock_of_a_killed_holder(places: Places) -> list[tuple[str, Any]]:
    """A (session TTL 2 s) is SIGKILLed: its key goes when its lease expires, then B holds L."""
    first, second, _ = places
    run = Transcript("L")
    holder = EtcdctlProcess(first, ["lock", "--ttl=2", "L"])
    waiter = None
    try:
        run.lines("A acquires", holder, 1)
        waiter = EtcdctlProcess(second, ["lock", "L"])  # after A holds L: B is second
        wait_for_keys(first, "L/", 2)
        holder.stop()
        run.lines("B acquires once A's lease expired", waiter, 1)
        run.exited("B on Ctrl-C", waiter)
    finally:
        stop(holder, waiter)
    return run.normalised()


def lock_running_a_command(places: Places) -> list[tuple[str, Any]]:
    """``lock L -- CMD``: CMD runs holding the lock (its key and revision in the environment),
    its output is etcdctl's, and the lock is released when it exits."""
    first, _, _ = places
    run = Transcript("L")
    command = 'echo "key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"; exit 3'
    locker = EtcdctlProcess(first, ["lock", "L", "--", "sh", "-c", command])
    try:
        run.exited("the command's output and exit", locker, interrupt=False)
        run.get("after", first, "L", "--prefix")
    finally:
        locker.stop()
    return run.normalised()


def election(places: Places) -> list[tuple[str, Any]]:
    """p1 leads E; an observer sees it; p2 campaigns and waits; p1 resigns (Ctrl-C); p2 leads
    and the observer sees the change."""
    first, second, third = places
    run = Transcript("E")
    leader = EtcdctlProcess(first, ["elect", "E", "p1"])
    observer = None
    candidate = None
    try:
        run.lines("p1 is elected", leader, 1)
        observer = EtcdctlProcess(third, ["elect", "-l", "E"])
        run.lines("the observer sees p1", observer, 1)
        candidate = EtcdctlProcess(second, ["elect", "E", "p2"])
        wait_for_keys(first, "E/", 2)
        run.note("p2 printed nothing while p1 led", candidate.printed_nothing_more())
        run.exited("p1 resigns on Ctrl-C", leader)
        run.lines("p2 is elected", candidate, 1)
        run.lines("the observer sees p2", observer, 1)
        run.exited("p2 on Ctrl-C", candidate)
        run.exited("the observer on Ctrl-C", observer)
        run.get("after", first, "E", "--prefix")
    finally:
        stop(leader, observer, candidate)
    return run.normalised()


SCENARIOS = [lock_released_by_ctrl_c, lock_of_a_killed_holder, lock_running_a_command, election]


# -- one member ---------------------------------------------------------------------------------


def test_a_second_locker_waits_until_the_first_releases_on_ctrl_c(pair: ServerPair) -> None:
    acquired_a, nothing, _, acquired_b, _, after = same_on_both(
        lock_released_by_ctrl_c, *on_one(pair)
    )
    assert nothing is True
    assert acquired_a[0]["kvs"][0]["key"] == "L/<lease-1>"
    assert acquired_b[0]["header"]["revision"] == 4  # A's key deleted at 4, after B's put at 3
    assert after[1]["header"]["revision"] == 5 and "kvs" not in after[1]


def test_a_killed_lockers_lock_passes_on_when_its_session_expires(pair: ServerPair) -> None:
    _, acquired_b, _ = same_on_both(lock_of_a_killed_holder, *on_one(pair))
    assert acquired_b[0]["kvs"][0]["create_revision"] == 3


def test_lock_runs_the_command_holding_the_lock(pair: ServerPair) -> None:
    ran, after = same_on_both(lock_running_a_command, *on_one(pair))
    assert ran[1] == ["key=L/<lease-1> rev=2"]
    assert "kvs" not in after[1]


def test_elect_campaigns_waits_and_the_observer_follows_the_leader(pair: ServerPair) -> None:
    elected, observed, *_ = same_on_both(election, *on_one(pair))
    assert elected[0]["kvs"][0]["value"] == "p1"
    assert observed[0]["kvs"][0]["key"] == "E/<lease-1>"


def keep_alive_lines(server: Server, lease_id: int, count: int) -> list[Any]:
    process = EtcdctlProcess(server, ["lease", "keep-alive", f"{lease_id:x}"], json=False)
    try:
        printed = process.raw_lines(count)
    finally:
        process.stop()
    return list(mask(printed, [lease_id]))


def test_lease_keep_alive_streams_one_line_per_renewal(pair: ServerPair) -> None:
    """A lease of 3 s is renewed every TTL/3 = 1 s; each renewal prints the full TTL."""
    ref, sub = grant_on_both(pair.reference, pair.subject, "3")
    printed = [
        keep_alive_lines(server, int(granted.output["ID"]), 3)
        for server, granted in ((pair.reference, ref), (pair.subject, sub))
    ]
    assert printed[1] == printed[0]
    assert printed[0] == ["lease <lease> keepalived with TTL(3)"] * 3


# -- three members ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Places, Places]]:
    """A 3-member etcd and a 3-member subject; each scenario's places are the leader and the
    two followers, so sessions on different members meet through Raft."""
    with cluster_pair(tmp_path_factory.mktemp("lock-elect-clusters")) as (reference, subject):
        yield places_of(reference), places_of(subject)


def places_of(cluster: ProcessCluster) -> Places:
    leader, _ = asyncio.run(cluster.agreed_leader())
    first, second = (member for member in cluster.members if member is not leader)
    return first, leader, second


@pytest.mark.parametrize("scenario", [lock_released_by_ctrl_c, election], ids=lambda s: s.__name__)
def test_on_three_members(clusters: tuple[Places, Places], scenario: Scenario) -> None:
    same_on_both(scenario, *clusters)
