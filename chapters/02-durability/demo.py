"""Chapter 2 demo: kill -9 a kv server in the middle of a stream of writes, and lose nothing.

Run it with ``python3 chapters/02-durability/demo.py``. It starts ``kv serve`` in a temporary
data directory, on free ports (a ``kv serve`` left running elsewhere does not get in the way),
writes from 16 concurrent clients, kills the server with SIGKILL after 300 answered writes,
starts it again on the same directory and checks every answered write. If the server exits
before it answers, the demo stops at once and prints the end of the server's log.
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
from dataclasses import dataclass
from pathlib import Path

from kv.client import KVClient
from kv.server.errors import EtcdError

WRITERS = 16
KILL_AFTER = 300
#: How much of the server's log to show if it dies before it answers.
LOG_LINES = 15


class ServerDied(RuntimeError):
    """``kv serve`` exited before it answered; the message ends with its last log lines."""


@dataclass(frozen=True, slots=True)
class Ports:
    """The two ports a member listens on, both free ones: a ``kv serve`` the reader left
    running (or an etcd) may hold etcd's defaults, 2379 and 2380."""

    client: int
    peer: int

    @classmethod
    def free(cls) -> Ports:
        with socket.socket() as client, socket.socket() as peer:
            client.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port
            peer.bind(("127.0.0.1", 0))
            return cls(client.getsockname()[1], peer.getsockname()[1])

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client}"


def start(data_dir: Path, ports: Ports, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``kv serve`` on ``ports`` with its data in ``data_dir``; its log goes to
    ``log_path`` (appended to, so a restart continues it)."""
    url, peer_url = f"http://{ports.endpoint}", f"http://127.0.0.1:{ports.peer}"
    flags = ["--data-dir", str(data_dir), "--listen-client-urls", url]
    flags += ["--advertise-client-urls", url, "--listen-peer-urls", peer_url]
    flags += ["--initial-advertise-peer-urls", peer_url, "--initial-cluster", f"default={peer_url}"]
    command = [sys.executable, "-m", "kv", "serve", *flags]
    with log_path.open("ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=log)


def last_lines(log_path: Path, count: int = LOG_LINES) -> str:
    lines = log_path.read_text(errors="replace").splitlines()
    return "\n".join(f"  | {line}" for line in lines[-count:]) or "  | (nothing logged)"


async def wait_ready(endpoint: str, server: subprocess.Popen[bytes], log_path: Path) -> float:
    """Seconds until the server answers Status; `ServerDied` at once if it exits first."""
    started = time.monotonic()
    while True:
        if server.poll() is not None:
            raise ServerDied(
                f"kv serve exited with {server.returncode} before it answered; its log ends:\n"
                f"{last_lines(log_path)}"
            )
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
        data_dir, log_path = Path(temporary) / "demo.etcd", Path(temporary) / "kv.log"
        ports = Ports.free()
        endpoint = ports.endpoint
        server = start(data_dir, ports, log_path)
        await wait_ready(endpoint, server, log_path)
        print(f"kv serve is up on {endpoint}, data in {data_dir}")
        acknowledged = await write_until_killed(endpoint, server)
        server.wait()
        print(f"the server died with {server.returncode}; files left behind:")
        for path in sorted(data_dir.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(data_dir)}  ({path.stat().st_size} bytes)")
        server = start(data_dir, ports, log_path)
        took = await wait_ready(endpoint, server, log_path)
        print(f"restarted in {took:.2f}s; checking {len(acknowledged)} keys' last answered write")
        lost = 0
        async with KVClient(endpoint) as client:
            for key, (value, revision) in sorted(acknowledged.items()):
                found = await client.get(key)
                # The newest write of a key may have reached the disk without its answer
                # reaching us: then the key is further on than our record, never behind.
                if (
                    found is None
                    or found.mod_revision < revision
                    or (found.mod_revision == revision and found.value != value)
                ):
                    lost += 1
                    print(f"  LOST {key.decode()}={value.decode()} at revision {revision}")
            status = await client.status()
        server.send_signal(signal.SIGTERM)
        server.wait()
        print(f"lost acknowledged writes: {lost}; store at revision {status.header.revision}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except ServerDied as error:
        sys.exit(str(error))
