"""Auto-compaction against the real etcd 3.4 and kv (chapter 10): the flags' checks and messages,
and a periodic compactor catching up with a store that stopped being written to.

The exact moment of a compaction depends on when each server started, so the comparison is of
what both reach, polled with a deadline: once writes stop, every note the periodic compactor
takes is the latest revision, so within two retentions both servers have compacted to it.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.compat.scenario import StartPair
from tests.compat.servers import ETCD_BINARY, ServerOptions, free_ports, kv_command

pytestmark = pytest.mark.etcd

COMPACTED = "etcdserver: mvcc: required revision has been compacted"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--auto-compaction-mode", "daily", "--auto-compaction-retention", "1"],
            'unknown auto-compaction-mode "daily"',
        ),
        (
            ["--auto-compaction-retention", "abc"],
            'error parsing CompactionRetention: time: invalid duration "abc"',
        ),
        (
            ["--auto-compaction-retention", "-1"],
            'error parsing CompactionRetention: time: missing unit in duration "-1"',
        ),
    ],
)
def test_a_bad_compaction_flag_stops_both_servers_with_etcds_message(
    flags: list[str], message: str, tmp_path: Path
) -> None:
    for program, name in (([ETCD_BINARY], "etcd"), ([*kv_command(), "serve"], "kv")):
        client, peer = free_ports(2)
        done = subprocess.run(
            [
                *program,
                "--data-dir",
                str(tmp_path / name),
                "--listen-client-urls",
                f"http://127.0.0.1:{client}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{client}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                *flags,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (name, done.returncode) == (name, 1), done.stderr
        assert message in done.stderr, f"{name}: {done.stderr}"


async def _compacted_revision(client: KVClient, key: str, latest: int) -> int | None:
    """The revision ``client``'s server has compacted to, if it is ``latest`` or ``latest - 1``."""
    try:
        await client.range(key, revision=latest - 1)
    except EtcdError as error:
        assert error.message == COMPACTED
        await client.range(key, revision=latest)  # the latest revision itself stays readable
        return latest
    return None


async def test_a_periodic_compactor_catches_up_with_a_store_no_longer_written_to(
    start_pair: StartPair,
) -> None:
    pair = start_pair(ServerOptions(extra_flags=("--auto-compaction-retention=1s",)))
    compacted: dict[str, int | None] = {}
    for server in (pair.reference, pair.subject):
        async with KVClient(server.endpoint) as client:
            for n in range(5):
                response = await client.put("key", f"v{n}")
            latest = response.header.revision
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10  # two retentions and a check, with room for a slow CI
            while (found := await _compacted_revision(client, "key", latest)) is None:
                if loop.time() > deadline:
                    break
                await asyncio.sleep(0.1)  # polling for an outcome, not timing one
            compacted[server.kind] = found
    assert compacted == {"etcd": 6, pair.subject.kind: 6}  # both compacted to their 5th put
