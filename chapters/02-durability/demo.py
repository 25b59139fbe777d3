"""Chapter 2 demo: kill -9 a kv server in the middle of a stream of writes, and lose nothing.

Run it with ``python3 chapters/02-durability/demo.py``. It starts ``kv serve`` in a temporary
data directory, writes from 16 concurrent clients, kills the server with SIGKILL after 300
answered writes, starts it again on the same directory and checks every answered write.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kv.client import KVClient
from kv.server.errors import EtcdError

WRITERS = 16
KILL_AFTER = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{port}"
    flags = ["--data-dir", str(data_dir), "--listen-client-urls", url]
    flags += ["--advertise-client-urls", url]
    command = [sys.executable, "-m", "kv", "serve", *flags]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


async def wait_ready(endpoint: str) -> float:
    started = time.monotonic()
    while True:
        try:
            async with KVClient(endpoint, timeout=0.5) as client:
                await client.status()
                return time.monotonic() - started
        except EtcdError:
            await asyncio.sleep(0.02)


async def write_until_killed(
    endpoint: str, server: subprocess.Popen[bytes]
) -> dict[bytes, tuple[bytes, int]]:
    """Each writer puts its own key again and again; return each key's last answered write."""
    acknowledged: dict[bytes, tuple[bytes, int]] = {}
    answered = 0

    async def writer(number: int) -> None:
        nonlocal answered
        async with KVClient(endpoint) as client:
            for sequence in range(10_000):
                key, value = b"writer-%02d" % number, b"%d" % sequence
                try:
                    response = await client.put(key, value)
                except EtcdError:
                    return  # the server is gone
                acknowledged[key] = (value, response.header.revision)
                answered += 1
                if answered == KILL_AFTER:
                    os.kill(server.pid, signal.SIGKILL)
                    print(f"SIGKILL after {KILL_AFTER} answered writes")

    await asyncio.gather(*(writer(number) for number in range(WRITERS)))
    return acknowledged


async def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        data_dir, port = Path(temporary) / "demo.etcd", free_port()
        endpoint = f"127.0.0.1:{port}"
        server = start(data_dir, port)
        await wait_ready(endpoint)
        print(f"kv serve is up on {endpoint}, data in {data_dir}")
        acknowledged = await write_until_killed(endpoint, server)
        server.wait()
        print(f"the server died with {server.returncode}; files left behind:")
        for path in sorted(data_dir.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(data_dir)}  ({path.stat().st_size} bytes)")
        server = start(data_dir, port)
        took = await wait_ready(endpoint)
        print(f"restarted in {took:.2f}s; checking {len(acknowledged)} keys' last answered write")
        lost = 0
        async with KVClient(endpoint) as client:
            for key, (value, revision) in sorted(acknowledged.items()):
                found = await client.get(key)
                # The newest write of a key may have reached the disk without its answer
                # reaching us: then the key is further on than our record, never behind.
                behind = found is None or found.mod_revision < revision
                if behind or (found.mod_revision == revision and found.value != value):
                    lost += 1
                    print(f"  LOST {key.decode()}={value.decode()} at revision {revision}")
            status = await client.status()
        server.send_signal(signal.SIGTERM)
        server.wait()
        print(f"lost acknowledged writes: {lost}; store at revision {status.header.revision}")


if __name__ == "__main__":
    asyncio.run(main())
