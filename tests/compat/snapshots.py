"""Snapshots of real servers for the interchange tests: fill a server, save, restore, compare.

`fill` writes a history that touches every part of etcd's backend file: overwrites (versions),
a delete (a tombstone), a transaction of several puts (sub-revisions), a lease with a key
attached, values larger than a page (overflow pages), and a compaction (the meta bucket's
compaction marks). `contents` is what the interchange must keep: every key with its revisions,
version and lease (``etcdctl get "" --from-key -w json`` without its header) and each lease's
granted TTL.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.compat.etcdctl import etcdctl
from tests.compat.servers import CLUSTER_TOKEN, ETCDCTL_BINARY, Server, kv_command

#: Values larger than a page: bbolt stores each on a page with overflow pages after it.
LARGE_VALUES = {"big": "v" * 10_000, "bigger": "w" * 200_000}
LEASE_TTL = 600
#: One transaction of many puts: one revision, many sub-revisions, more than one leaf page.
MANY_PUTS = "".join(f"put many/{number:03} {number}\n" for number in range(100))


def ok(server: Server, *args: str, stdin: str | None = None) -> Any:
    result = etcdctl(server.endpoint, args, stdin=stdin)
    assert result.exit_code == 0, (args, result)
    return result.output


def fill(server: Server) -> int:
    """Write the history the module docstring describes; return the lease's ID."""
    for key, value in (("a", "1"), ("b", "2"), ("a", "3")):
        ok(server, "put", key, value)
    ok(server, "del", "b")
    lease = int(ok(server, "lease", "grant", str(LEASE_TTL))["ID"])
    ok(server, "put", f"--lease={lease:x}", "leased", "x")
    ok(server, "txn", stdin=f"\n{MANY_PUTS}\n\n")  # no compares; all puts on success
    for key, value in LARGE_VALUES.items():
        ok(server, "put", key, stdin=value)  # from stdin: an argument may not exceed 128 KiB
    ok(server, "compaction", "3")
    return lease


def contents(server: Server) -> tuple[list[Any], dict[int, int]]:
    """Every key as ``get --from-key`` shows it (header dropped), and each lease's TTL."""
    kvs = ok(server, "get", "", "--from-key").get("kvs", [])
    leases = {}
    for entry in ok(server, "lease", "list").get("leases") or []:
        lease = int(entry["id"])
        leases[lease] = int(ok(server, "lease", "timetolive", f"{lease:x}")["granted-ttl"])
    return kvs, leases


def revision(server: Server) -> int:
    return int(ok(server, "endpoint", "status")[0]["Status"]["header"]["revision"])


def save(server: Server, path: Path) -> Path:
    output = ok(server, "snapshot", "save", str(path))
    assert output.strip() == f"Snapshot saved at {path}", output
    return path


def status(path: Path) -> dict[str, int]:
    """``etcdctl snapshot status FILE -w json``: hash, revision, totalKey, totalSize."""
    completed = _run([ETCDCTL_BINARY, "snapshot", "status", str(path), "-w", "json"])
    parsed: dict[str, int] = json.loads(completed.stdout)
    return parsed


def restore_flags(server: Server) -> list[str]:
    """The restore flags that make ``server``'s data dir, for the member ``server`` is."""
    return [
        f"--data-dir={server.data_dir}",
        f"--name={server.name}",
        f"--initial-cluster={server.name}={server.peer_url}",
        f"--initial-cluster-token={CLUSTER_TOKEN}",
        f"--initial-advertise-peer-urls={server.peer_url}",
    ]


def restore_with_etcdctl(snapshot: Path, server: Server) -> None:
    """``etcdctl snapshot restore`` into ``server``'s data dir (start it afterwards)."""
    _run([ETCDCTL_BINARY, "snapshot", "restore", str(snapshot), *restore_flags(server)])


def restore_with_kv(snapshot: Path, server: Server) -> None:
    """``kv snapshot restore`` into ``server``'s data dir (start it afterwards)."""
    _run([*kv_command(), "snapshot", "restore", str(snapshot), *restore_flags(server)])


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False, env={"ETCDCTL_API": "3"}
    )
    assert completed.returncode == 0, (argv, completed.stdout, completed.stderr)
    return completed
