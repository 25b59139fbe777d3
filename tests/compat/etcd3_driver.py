"""Run one scenario of the python ``etcd3`` client (PyPI etcd3 0.12.0) and print what it saw
(chapters 6-8: its lease, watch, txn and lock calls, and members/status).

    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python -m tests.compat.etcd3_driver \\
        SCENARIO HOST:PORT HOST:PORT

`tests.compat.test_etcd3_client_differential` runs it once against the real etcd and once
against kv, and compares the two transcripts (`tests.compat.etcd3_transcript`, one JSON line per
fact). It is a process of its own because etcd3 0.12's generated protobuf modules import under
protobuf 7 only with the pure-Python implementation, which kv's own servers and tests must not
get. Client 0 and client 1 are two clients, on the two endpoints given: the same member twice, or
a follower and the leader of a cluster, so that what one client writes another one sees through
Raft. Nothing here sleeps: a scenario waits for what it knows will come (a watch confirmed by the
server, an event, a lease's expiry), with `PATIENCE` as the bound.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Callable
from typing import Any

from tests.compat.etcd3_transcript import (
    PATIENCE,
    Client,
    Transcript,
    client_for,
    in_thread,
    ttl_band,
    watch_created,
)

#: The lock recipe's key: etcd3's ``Lock`` puts ``/locks/NAME``.
LOCK_KEY = "/locks/{}"


def lease_info(run: Transcript, client: Client, lease_id: int, granted: int) -> Any:
    """``get_lease_info`` (TimeToLive with keys), its TTL banded (`ttl_band`)."""
    info = run.plain(client.get_lease_info(lease_id))
    if "TTL" in info and int(info["TTL"]) >= 0:
        info["TTL"] = ttl_band(int(info["TTL"]), granted)
    return info


def leases(run: Transcript) -> None:
    """lease(), put with a lease, keys, TTLs, refresh, revoke, and the error cases."""
    lease = run.lease(0, 60)
    run.note("granted ttl", 0, lease.ttl)
    run.record("put with the Lease", 0, lambda c: c.put("k1", "v1", lease=lease))
    run.record("put with its ID", 1, lambda c: c.put("k2", "v2", lease=lease.id))
    run.record("get shows the lease", 1, lambda c: c.get("k1"))
    run.record("keys", 0, lambda c: sorted(lease.keys))
    run.record("granted_ttl", 0, lambda c: lease.granted_ttl)
    run.record("remaining_ttl", 0, lambda c: ttl_band(lease.remaining_ttl, 60))
    run.record("get_lease_info", 1, lambda c: lease_info(run, c, lease.id, 60))
    run.record("refresh", 0, lambda c: lease.refresh())
    run.record("refresh_lease by ID", 1, lambda c: list(c.refresh_lease(lease.id)))
    chosen = run.lease(1, 30, lease_id=0x1234)
    run.note("a chosen ID", 1, [chosen.id, chosen.ttl])
    run.record("the same ID again", 0, lambda c: c.lease(30, lease_id=0x1234))
    run.record("a TTL under the minimum", 0, lambda c: c.lease(1).ttl)
    run.record("a TTL over the maximum", 0, lambda c: c.lease(9_000_000_001))
    run.record("put with an unknown lease", 0, lambda c: c.put("k3", "v", lease=0x999))
    run.record("revoke", 1, lambda c: c.revoke_lease(lease.id))
    run.record("its keys are gone", 0, lambda c: list(c.get_prefix("k")))
    run.record("info after revoke", 1, lambda c: c.get_lease_info(lease.id))
    run.record("remaining_ttl after revoke", 0, lambda c: lease.remaining_ttl)
    run.record("refresh after revoke", 0, lambda c: lease.refresh())
    run.record("revoke again", 1, lambda c: lease.revoke())
    run.record("revoke the chosen ID", 0, lambda c: chosen.revoke())


def events_of(stream: tuple[Any, Callable[[], None]], count: int) -> list[Any]:
    """Read responses of a ``watch_response`` until ``count`` events came; then cancel."""
    responses, cancel = stream
    got: list[Any] = []
    while sum(len(r.events) for r in got) < count:
        got.append(next(responses))
    cancel()
    return got


def watches(run: Transcript) -> None:
    """watch, watch_prefix, watch_response with start_revision and prev_kv, watch_once,
    cancel_watch (the watch IDs of one stream), and a start revision that was compacted."""
    watcher = run.clients[0]
    events, cancel = watcher.watch("w")
    for label, call in (
        ("put w", lambda c: c.put("w", "1")),
        ("put w again", lambda c: c.put("w", "2")),
        ("delete w", lambda c: c.delete("w")),
    ):
        run.record(label, 1, call)
    run.note("watch saw", 0, [next(events) for _ in range(3)])
    cancel()
    prefix = watcher.watch_prefix_response("p/")
    run.record("put p/a", 1, lambda c: c.put("p/a", "1"))
    run.record("put q", 1, lambda c: c.put("q", "1"))
    run.record("put p/b", 1, lambda c: c.put("p/b", "1", prev_kv=True))
    run.record("delete_prefix p/", 1, lambda c: c.delete_prefix("p/"))
    run.note("watch_prefix saw, one response a revision", 0, events_of(prefix, 4))
    run.record(
        "replay from revision 2 with prev_kv",
        0,
        lambda c: events_of(c.watch_response("w", start_revision=2, prev_kv=True), 3),
    )
    put = run.record("put once", 1, lambda c: c.put("once", "1"))
    revision = put.header.revision
    run.record("watch_once", 0, lambda c: c.watch_once("once", start_revision=revision))
    run.record(
        "watch_prefix_once",
        0,
        lambda c: c.watch_prefix_once("on", timeout=PATIENCE, start_revision=revision),
    )
    run.record("watch_once times out", 0, lambda c: c.watch_once("nothing", timeout=0.3))
    cancelled_watch_ids(run)
    run.record("compact", 1, lambda c: c.compact(revision))
    errors: queue.Queue[Any] = queue.Queue()
    run.record(
        "watch from a compacted revision",
        0,
        lambda c: c.add_watch_callback("w", errors.put, start_revision=2),
    )
    run.note("its callback got", 0, errors.get(timeout=PATIENCE))


def cancelled_watch_ids(run: Transcript) -> None:
    """A cancelled watch's ID is not given again on the same stream; the next watch works."""
    got: queue.Queue[Any] = queue.Queue()
    first = run.record("add_watch_callback", 0, lambda c: c.add_watch_callback("c", got.put))
    run.record("cancel_watch", 0, lambda c: c.cancel_watch(first))
    run.record("add_watch_callback again", 0, lambda c: c.add_watch_callback("c", got.put))
    run.record("put c", 1, lambda c: c.put("c", "1"))
    run.note("only the second watch's callback ran", 0, got.get(timeout=PATIENCE))
    run.note("and nothing else", 0, got.empty())


def transactions(run: Transcript) -> None:
    """transaction() with compares on value, version, create and mod, both branches, nested
    transactions, ranges in compares, and the helpers built on it."""
    run.record("put t", 0, lambda c: c.put("t", "1"))

    def txn(compare: Callable[[Any], list[Any]], success: Callable[[Any], list[Any]]) -> Any:
        def call(c: Client) -> Any:
            t = c.transactions
            return c.transaction(
                compare=compare(t),
                success=success(t),
                failure=[t.get("t"), t.put("failed", "yes", prev_kv=True)],
            )

        return call

    cases: list[tuple[str, Callable[[Any], list[Any]], Callable[[Any], list[Any]]]] = [
        ("value ==", lambda t: [t.value("t") == "1"], lambda t: [t.put("t", "2"), t.get("t")]),
        ("value != (fails)", lambda t: [t.value("t") != "2"], lambda t: [t.delete("t")]),
        ("version >", lambda t: [t.version("t") > 1], lambda t: [t.put("t", "3", prev_kv=True)]),
        ("version < (fails)", lambda t: [t.version("t") < 3], lambda t: [t.delete("t")]),
        ("create == 0", lambda t: [t.create("u") == 0], lambda t: [t.put("u", "1")]),
        ("create == 0 (fails)", lambda t: [t.create("u") == 0], lambda t: [t.put("u", "2")]),
        ("mod == 5, ANDed", lambda t: [t.mod("u") == 5, t.value("t") == "3"], lambda t: []),
        ("mod >", lambda t: [t.mod("t") > 2], lambda t: [t.delete("u", prev_kv=True)]),
        (
            "a compare over a range",
            lambda t: [t.value("a", range_end="z") == "3"],
            lambda t: [t.get("a", range_end="z")],
        ),
        (
            "nested",
            lambda t: [t.version("t") > 0],
            lambda t: [t.txn(compare=[t.value("t") == "3"], success=[t.put("n", "1")], failure=[])],
        ),
        ("duplicate key", lambda t: [], lambda t: [t.put("d", "1"), t.put("d", "2")]),
    ]
    for label, compare, success in cases:
        run.record(label, 0, txn(compare, success))
    run.record("put_if_not_exists", 1, lambda c: c.put_if_not_exists("new", "1"))
    run.record("put_if_not_exists again", 1, lambda c: c.put_if_not_exists("new", "2"))
    run.record("replace", 1, lambda c: c.replace("t", "3", "4"))
    run.record("replace with a stale value", 1, lambda c: c.replace("t", "3", "5"))
    run.record("the keys from a to z", 1, lambda c: list(c.get_range("a", "z")))


def lock_alone(run: Transcript) -> None:
    """acquire, is_acquired, refresh, release; a second Lock of the same name meanwhile."""
    lock = run.lock(0, "L")
    run.record("acquire", 0, lambda c: lock.acquire())
    run.acquired(lock)
    run.record("is_acquired", 0, lambda c: lock.is_acquired())
    run.record("the lock's key", 0, lambda c: c.get(LOCK_KEY.format("L")))
    run.record("refresh", 0, lambda c: lock.refresh())
    other = run.lock(0, "L")
    run.record("another Lock times out", 0, lambda c: other.acquire(timeout=0.3))
    run.record("it is not acquired", 0, lambda c: other.is_acquired())
    run.record("its release fails", 0, lambda c: other.release())
    run.record("release", 0, lambda c: lock.release())
    run.record("is_acquired after release", 0, lambda c: lock.is_acquired())
    run.record("release again", 0, lambda c: lock.release())
    with run.clients[0].lock("M") as held:
        run.record("held by a with block", 0, lambda c: held.is_acquired())
    run.record("gone after the with block", 0, lambda c: c.get(LOCK_KEY.format("M")))


def lock_contention(run: Transcript) -> None:
    """Client 1 cannot take client 0's lock, then waits for it and gets it on release."""
    first, second = run.lock(0, "L"), run.lock(1, "L")
    run.record("0 acquires", 0, lambda c: first.acquire())
    run.acquired(first)
    run.record("1 times out", 1, lambda c: second.acquire(timeout=0.3))
    waiting = watch_created(run.clients[1])
    result = in_thread(lambda: second.acquire(timeout=PATIENCE))
    waiting.wait(PATIENCE)  # 1 tried, failed and now watches the key
    run.record("0 releases", 0, lambda c: first.release())
    run.note("1 acquires", 1, result())
    run.acquired(second)
    run.record("0 is_acquired", 0, lambda c: first.is_acquired())
    run.record("1 is_acquired", 1, lambda c: second.is_acquired())
    run.record("the lock's key", 0, lambda c: c.get(LOCK_KEY.format("L")))
    run.record("1 releases", 1, lambda c: second.release())


def lock_expiry(run: Transcript) -> None:
    """A lock whose lease expires (never refreshed) passes to the client waiting for it."""
    first, second = run.lock(0, "E", ttl=2), run.lock(1, "E")
    run.record("0 acquires for 2 s", 0, lambda c: first.acquire())
    run.acquired(first)
    run.record("1 acquires once 0's lease expired", 1, lambda c: second.acquire(timeout=PATIENCE))
    run.acquired(second)
    run.record("0 is_acquired", 0, lambda c: first.is_acquired())
    run.record("0's release fails", 0, lambda c: first.release())
    run.record("0's refresh", 0, lambda c: first.refresh())
    run.record("the lock's key", 1, lambda c: c.get(LOCK_KEY.format("E")))


def members(run: Transcript) -> None:
    """``members``: each member's ID, name and URLs."""
    run.record("members", 0, lambda c: sorted(c.members, key=lambda m: m.name))


def status(run: Transcript) -> None:
    """``status()``, whose leader etcd3 finds among ``members`` by the leader's ID."""
    got = run.clients[0].status()
    run.note(
        "status",
        0,
        {
            "version is text": isinstance(got.version, str),
            "db_size > 0": got.db_size > 0,
            "raft_index > 0": got.raft_index > 0,
            "raftTerm": got.raft_term,
            "leader is a member": got.leader is not None,
        },
    )


SCENARIOS: dict[str, Callable[[Transcript], None]] = {
    scenario.__name__: scenario
    for scenario in (
        leases,
        watches,
        transactions,
        lock_alone,
        lock_contention,
        lock_expiry,
        members,
        status,
    )
}


def main(argv: list[str]) -> int:
    name, *endpoints = argv
    clients = [client_for(endpoint) for endpoint in endpoints]
    SCENARIOS[name](Transcript(clients))
    # The clients are not closed: closing one ends its watch thread with a traceback on
    # stderr (etcd3 0.12 retries the stream on the closed channel); the process exit ends them.
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
