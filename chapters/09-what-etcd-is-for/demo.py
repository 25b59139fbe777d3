"""Chapter 9's demo: the recipes on a real three-member cluster that the demo starts itself
(``kv cluster start`` on free ports, in a directory of its own): two workers contend for a
lock and one dies; an election with a resign; a service instance that registers and
crashes; a configuration change followed.

Run: ``python3 chapters/09-what-etcd-is-for/demo.py``
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from kv.client import KVClient, prefix_end, put_op
from kv.cluster.layout import port_in_use
from kv.recipes import Election, Mutex, Session
from kv.recipes.configuration import Change, ConfigFollower
from kv.recipes.discovery import ServiceWatcher, register

#: A session's lease lives this long unrenewed: the shortest kv accepts with these timers.
TTL = 2
#: ``kv cluster`` puts member i's client port at BASE + 10 * i, its peer port one above.
STRIDE = 10
SIZE = 3


def free_base_port(first: int = 22379, last: int = 32379) -> int:
    """The first base port from ``first`` on whose every member port is free."""
    for base in range(first, last, 100):
        ports = [base + STRIDE * i + offset for i in range(SIZE) for offset in (0, 1)]
        if not any(port_in_use(port) for port in ports):
            return base
    raise RuntimeError("no free ports for the demo's cluster")


@contextlib.contextmanager
def kv_cluster(workdir: Path) -> Iterator[list[str]]:
    """``kv cluster start`` in ``workdir``; yield its endpoints; Ctrl-C it on the way out."""
    base = free_base_port()
    log = workdir / "kv-cluster.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kv", "cluster", "start", "--fresh", "--base-port", str(base)],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "members serve" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kv cluster did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield [f"127.0.0.1:{base + STRIDE * i}" for i in range(SIZE)]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


async def until_a_leader(client: KVClient) -> None:
    while (await client.status()).leader == 0:
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running(follower: ConfigFollower | ServiceWatcher) -> AsyncIterator[None]:
    task = asyncio.create_task(follower.follow())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], bool]) -> None:
    """Poll ``check()`` until it is true (the demo waits for what the cluster must do)."""
    while not check():
        await asyncio.sleep(0.05)


async def line_length(client: KVClient, name: str) -> int:
    """How many sessions stand in the line of the lock or election ``name``."""
    prefix = f"{name}/".encode()
    return (await client.range(prefix, prefix_end(prefix), count_only=True)).count


async def lock(client: KVClient) -> None:
    print("-- two workers contend for the lock 'printer'")
    worker1 = Mutex(await Session.open(client, ttl=TTL), "printer")
    await worker1.lock()
    print(f"worker-1 holds it, fencing token {worker1.revision}")
    worker2 = Mutex(await Session.open(client, ttl=TTL), "printer")
    waiting = asyncio.create_task(worker2.lock())
    while await line_length(client, "printer") < 2:
        await asyncio.sleep(0.05)
    print(f"worker-2 waits in line behind it: {not waiting.done()}")
    worker1.session.orphan()  # worker-1 dies: it neither unlocks nor renews its lease
    print(f"worker-1 dies holding it; its lease ends within {TTL} s")
    await waiting
    print(f"worker-2 holds it, fencing token {worker2.revision}")
    late = await client.txn([worker1.is_owner()], [put_op("printer/job", "from worker-1")])
    print(f"worker-1's late write, guarded by its token: {'done' if late.succeeded else 'refused'}")
    await worker2.unlock()
    await worker2.session.close()


async def election(client: KVClient) -> None:
    print("-- an election: 'scheduler'")
    n1 = Election(await Session.open(client, ttl=TTL), "scheduler")
    await n1.campaign("n1")
    observer = Election(await Session.open(client, ttl=TTL), "scheduler")
    observed = observer.observe()
    print(f"observer: {(await anext(observed)).kv.value.decode()} leads")
    n2 = Election(await Session.open(client, ttl=TTL), "scheduler")
    campaigning = asyncio.create_task(n2.campaign("n2"))
    while await line_length(client, "scheduler") < 2:
        await asyncio.sleep(0.05)
    print(f"n2 campaigns, and waits in line behind n1: {not campaigning.done()}")
    await n1.resign()
    print("n1 resigns")
    await campaigning
    print(f"observer: {(await anext(observed)).kv.value.decode()} leads")
    await observed.aclose()
    for session in (n1.session, n2.session, observer.session):
        await session.close()


async def discovery(client: KVClient, endpoints: list[str]) -> None:
    print("-- service discovery: /services/web/")

    def seen(changes: list[Change]) -> None:
        for change in changes:
            instance = change.key.rsplit(b"/", 1)[1].decode()
            if change.value is None:
                print(f"watcher: {instance} left")
            else:
                print(f"watcher: {instance} joined at {change.value.decode()}")

    watcher = ServiceWatcher(endpoints, "web", seen)
    async with running(watcher):
        web1 = await register(client, "web", "web-1", b"10.0.0.7:8080", ttl=TTL)
        await until(lambda: "web-1" in watcher.instances)
        web1.session.orphan()
        print(f"web-1 crashes: nobody renews its lease, and in {TTL} s at most ...")
        await until(lambda: "web-1" not in watcher.instances)


async def configuration(client: KVClient, endpoints: list[str]) -> None:
    print("-- a configuration followed: /config/web/")

    def apply(changes: list[Change]) -> None:
        for change in changes:
            value = "deleted" if change.value is None else change.value.decode()
            print(f"config: {change.key.decode()} = {value} (revision {change.revision})")

    first = await client.put("/config/web/workers", "4")
    follower = ConfigFollower(endpoints, b"/config/web/", apply)
    async with running(follower):
        await until(lambda: follower.revision >= first.header.revision)  # loaded
        written = await client.put("/config/web/workers", "8")
        await until(lambda: follower.revision >= written.header.revision)


async def demo(endpoints: list[str]) -> None:
    async with KVClient(endpoints[0]) as client:
        await until_a_leader(client)
        await lock(client)
        await election(client)
        await discovery(client, endpoints)
        await configuration(client, endpoints)


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir, kv_cluster(Path(workdir)) as endpoints:
        print(f"-- kv cluster start: {SIZE} members")
        asyncio.run(demo(endpoints))


if __name__ == "__main__":
    main()
