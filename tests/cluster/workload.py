"""Clients that write and read a real cluster while a test hurts it, recording a history.

Each `Worker` has its own connection to one member and loops: put a value never used
before to one of a few keys, or read a key (linearizable). Every request is recorded in a
`kv.linearizability.Recorder` *before* it is sent; only an answer marks it returned. A put
that fails (timeout, a member gone, "leader changed") stays pending: the cluster may still
apply it, and the checker allows both. A failed read is recorded as never returned too (it
changed nothing, and pending reads are harmless to the check).

`EtcdctlWriter` does the same with the real ``etcdctl put`` in a thread, so that the
history also holds writes from etcd's own client.

What a test then checks: the history is linearizable (`check_history`), and every
acknowledged put is still readable or was overwritten by a later put of the same key.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from kv.client import KVClient
from kv.linearizability import (
    Get,
    GetResult,
    KeyValueModel,
    KvInput,
    KvOutput,
    Outcome,
    Put,
    PutResult,
    Recorder,
    check,
)
from kv.server.errors import EtcdError
from tests.compat.servers import ETCDCTL_BINARY

KEYS = tuple(f"failover/k{i}" for i in range(4))
#: A request that takes longer than this is abandoned (stays pending).
REQUEST_TIMEOUT = 3.0
FRESH_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


@dataclass(slots=True)
class History:
    """The recorder every client writes to, and a count of acknowledged puts."""

    recorder: Recorder[KvInput, KvOutput] = field(default_factory=Recorder)
    acknowledged: list[tuple[str, str, float]] = field(default_factory=list)
    values: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def now(self) -> float:
        return time.monotonic()

    def next_value(self, client: str) -> str:
        return f"{client}-{next(self.values)}"


@dataclass(slots=True)
class Worker:
    """One client on one member's endpoint, until ``stop`` is set."""

    client_id: int
    endpoint: str
    history: History
    rng: random.Random
    errors: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with KVClient(
            self.endpoint, timeout=REQUEST_TIMEOUT, options=FRESH_CONNECTION
        ) as client:
            while not stop.is_set():
                if client.unreachable:
                    # Its member is down: a request now would fail before reaching any
                    # server, yet count as a put that might have happened (pending), and
                    # many of them make the linearizability search explode. Wait instead.
                    await asyncio.sleep(0.1)
                    continue
                key = self.rng.choice(KEYS)
                if self.rng.random() < 0.6:
                    await self._put(client, key)
                else:
                    await self._get(client, key)

    async def _put(self, client: KVClient, key: str) -> None:
        recorder, value = self.history.recorder, self.history.next_value(f"c{self.client_id}")
        op = recorder.call(self.client_id, Put(key, value), self.history.now())
        try:
            await client.put(key, value)
        except EtcdError:
            self.errors += 1
            await asyncio.sleep(0.1)  # back off; the put stays pending
            return
        now = self.history.now()
        recorder.returned(op, PutResult(), now)
        self.history.acknowledged.append((key, value, now))

    async def _get(self, client: KVClient, key: str) -> None:
        recorder = self.history.recorder
        op = recorder.call(self.client_id, Get(key), self.history.now())
        try:
            found = await client.get(key)
        except EtcdError:
            self.errors += 1
            await asyncio.sleep(0.05)
            return
        value = found.value.decode() if found is not None else None
        recorder.returned(op, GetResult(value), self.history.now())


def etcdctl_put(endpoints: list[str], key: str, value: str) -> bool:
    result = subprocess.run(
        [
            ETCDCTL_BINARY,
            f"--endpoints={','.join(endpoints)}",
            "--command-timeout=3s",
            "put",
            key,
            value,
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return result.returncode == 0 and result.stdout.strip() == "OK"


async def etcdctl_writer(
    client_id: int, endpoints: list[str], history: History, stop: asyncio.Event
) -> int:
    """Put values with the real etcdctl (one process per put) until ``stop``; the puts done."""
    rng = random.Random(client_id)
    done = 0
    while not stop.is_set():
        key, value = rng.choice(KEYS), history.next_value(f"etcdctl{client_id}")
        op = history.recorder.call(client_id, Put(key, value), history.now())
        if await asyncio.to_thread(etcdctl_put, endpoints, key, value):
            now = history.now()
            history.recorder.returned(op, PutResult(), now)
            history.acknowledged.append((key, value, now))
            done += 1
        else:
            await asyncio.sleep(0.05)
    return done


async def final_reads(endpoint: str, history: History, client_id: int) -> dict[str, str | None]:
    """Read every key once more (linearizably) and record the reads; the values seen."""
    seen: dict[str, str | None] = {}
    async with KVClient(endpoint, timeout=10.0, options=FRESH_CONNECTION) as client:
        for key in KEYS:
            op = history.recorder.call(client_id, Get(key), history.now())
            found = await client.get(key)
            value = found.value.decode() if found is not None else None
            history.recorder.returned(op, GetResult(value), history.now())
            seen[key] = value
    return seen


def check_history(history: History) -> None:
    """The history is linearizable, or fail with the checker's explanation."""
    result = check(KeyValueModel(), history.recorder.history(), max_steps=5_000_000)
    assert result.outcome is Outcome.LINEARIZABLE, str(result)
