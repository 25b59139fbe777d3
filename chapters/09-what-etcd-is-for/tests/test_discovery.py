"""Chapter 9: service discovery (`kv.recipes.discovery`) on a real three-member kv cluster:
a registration is seen on every member; an instance that stops renewing its lease (its process
killed, or its session orphaned) leaves every watcher's list when its TTL has run out, never
before.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from kv.client import KVClient, prefix_end
from kv.recipes.configuration import Change
from kv.recipes.discovery import ServiceWatcher, register, service_prefix
from tests.cluster.processes import ProcessCluster, caught_up, wait_for
from tests.recipes.running import running

pytestmark = pytest.mark.etcd

#: Seconds an instance's lease lives unrenewed; kv's minimum with the fast test timers is 2.
TTL = 3
#: The TTL server-side is whole seconds; the watchers hear of a delete a moment after it.
ROUNDING = 1.0


class Departures:
    """An ``on_change`` that notes when (monotonic seconds) each instance left."""

    def __init__(self) -> None:
        self.left: dict[str, float] = {}

    def __call__(self, changes: list[Change]) -> None:
        for change in changes:
            if change.value is None:
                self.left[change.key.rsplit(b"/", 1)[1].decode()] = time.monotonic()


def watchers_on_each_member(cluster: ProcessCluster) -> list[tuple[ServiceWatcher, Departures]]:
    """One watcher per member, each starting on its own member."""
    endpoints = cluster.endpoints
    made = []
    for i in range(len(endpoints)):
        departures = Departures()
        rotated = endpoints[i:] + endpoints[:i]
        made.append((ServiceWatcher(rotated, "web", departures), departures))
    return made


async def all_list(watchers: list[tuple[ServiceWatcher, Departures]], instance: str) -> None:
    async def probe() -> bool | None:
        return True if all(instance in w.instances for w, _ in watchers) else None

    await wait_for(probe, f"every watcher lists {instance}")


async def remaining_ttl(client: KVClient, lease_id: int) -> float:
    """The seconds the lease has left, and the moment we asked, as a deadline."""
    answer = await client.lease_time_to_live(lease_id)
    assert answer.TTL > 0, "the lease expired before the test could look at it"
    return time.monotonic() + answer.TTL


@pytest.fixture
def instances(cluster: ProcessCluster) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
async def watchers(
    cluster: ProcessCluster,
) -> AsyncIterator[list[tuple[ServiceWatcher, Departures]]]:
    await cluster.agreed_leader()
    made = watchers_on_each_member(cluster)
    async with contextlib.AsyncExitStack() as stack:
        for watcher, _ in made:
            await stack.enter_async_context(running(watcher.follow()))
        yield made


async def test_a_registration_is_seen_on_every_member(cluster: ProcessCluster) -> None:
    leader, _ = await cluster.agreed_leader()
    async with KVClient(leader.endpoint) as client:
        registration = await register(client, "web", "web-1", b"10.0.0.7:8080", ttl=TTL)
        prefix = service_prefix("web")
        for member in cluster.members:
            await caught_up(member, leader)
            async with KVClient(member.endpoint) as on_member:
                listed = await on_member.range(prefix, prefix_end(prefix), serializable=True)
            assert [(kv.key, kv.value, kv.lease) for kv in listed.kvs] == [
                (b"/services/web/web-1", b"10.0.0.7:8080", registration.session.lease_id)
            ], member.label
        registration.session.orphan()


async def test_an_orphaned_instance_leaves_every_list_after_its_ttl_never_before(
    cluster: ProcessCluster, watchers: list[tuple[ServiceWatcher, Departures]]
) -> None:
    leader, _ = await cluster.agreed_leader()
    async with KVClient(leader.endpoint) as client:
        registration = await register(client, "web", "web-1", b"10.0.0.7:8080", ttl=TTL)
        staying = await register(client, "web", "web-2", b"10.0.0.8:8080", ttl=TTL)
        await all_list(watchers, "web-2")
        registration.session.orphan()  # as if the process had stopped renewing
        deadline = await remaining_ttl(client, registration.session.lease_id)
        await wait_for(_all_left(watchers, "web-1"), "every watcher drops web-1", timeout=TTL + 10)
        staying.session.orphan()
    for watcher, departures in watchers:
        assert departures.left["web-1"] >= deadline - ROUNDING
        assert "web-2" in watcher.instances  # kept alive all along: still listed


async def test_a_killed_instance_leaves_every_list_after_its_ttl_never_before(
    cluster: ProcessCluster,
    watchers: list[tuple[ServiceWatcher, Departures]],
    instances: list[subprocess.Popen[bytes]],
) -> None:
    leader, _ = await cluster.agreed_leader()
    process = subprocess.Popen(
        [sys.executable, "-c", INSTANCE, leader.endpoint, str(TTL)], stdout=subprocess.PIPE
    )
    instances.append(process)
    assert process.stdout is not None
    lease_id = int(await asyncio.to_thread(process.stdout.readline))
    await all_list(watchers, "web-1")
    process.kill()  # SIGKILL: no revoke, no last renewal
    await asyncio.to_thread(process.wait)
    async with KVClient(leader.endpoint) as client:
        deadline = await remaining_ttl(client, lease_id)
    await wait_for(_all_left(watchers, "web-1"), "every watcher drops web-1", timeout=TTL + 10)
    for _, departures in watchers:
        assert departures.left["web-1"] >= deadline - ROUNDING


def _all_left(
    watchers: list[tuple[ServiceWatcher, Departures]], instance: str
) -> Callable[[], Awaitable[bool | None]]:
    async def probe() -> bool | None:
        return True if all(instance in d.left for _, d in watchers) else None

    return probe


#: An instance in its own process: register, say the lease, serve until killed.
INSTANCE = """
import asyncio, sys
from kv.client import KVClient
from kv.recipes.discovery import register

async def main() -> None:
    async with KVClient(sys.argv[1]) as client:
        ttl = int(sys.argv[2])
        registration = await register(client, "web", "web-1", b"10.0.0.9:8080", ttl=ttl)
        print(registration.session.lease_id, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""
