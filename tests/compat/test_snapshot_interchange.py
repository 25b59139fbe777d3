"""Backups that move between kv and etcd, with the real processes on both sides.

A snapshot saved from kv (``etcdctl snapshot save`` against ``kv serve``) is etcd's own file:
the real ``etcdctl snapshot status`` reads it, ``etcdctl snapshot restore`` makes a data dir
of it, and the real etcd started there answers ``etcdctl get "" --from-key -w json`` as kv
did (keys, values, create and mod revisions, versions, leases) with the same leases. The other
way, a snapshot saved from the real etcd goes through ``kv snapshot restore`` into ``kv
serve``, which then answers as etcd did. `tests.compat.snapshots.fill` writes the history.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.compat.servers import Server, ServerKind, kv_command
from tests.compat.snapshots import (
    LEASE_TTL,
    contents,
    fill,
    restore_with_etcdctl,
    restore_with_kv,
    revision,
    save,
    status,
)

pytestmark = pytest.mark.etcd


def filled_and_saved(kind: ServerKind, workdir: Path) -> tuple[Server, Path]:
    """Start a ``kind`` server, fill it, save a snapshot; the server is left running."""
    server = Server(kind, workdir / kind)
    server.start()
    try:
        lease = fill(server)
        kvs, leases = contents(server)
        # What must survive: the lease, the key attached to it, the transaction's 100 keys.
        assert leases == {lease: LEASE_TTL}
        assert {"leased": lease} == {
            base64.b64decode(kv["key"]).decode(): int(kv["lease"]) for kv in kvs if "lease" in kv
        }
        assert len(kvs) > 100
        return server, save(server, workdir / f"{kind}.db")
    except BaseException:
        server.stop()
        raise


def kv_status(snapshot: Path) -> dict[str, int]:
    argv = [*kv_command(), "snapshot", "status", str(snapshot), "-w", "json"]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    parsed: dict[str, int] = json.loads(completed.stdout)
    return parsed


Restore = Callable[[Path, Server], None]


@pytest.mark.parametrize(
    ("source", "target", "restore"),
    [("kv", "etcd", restore_with_etcdctl), ("etcd", "kv", restore_with_kv)],
    ids=["kv-saved-etcdctl-restored-etcd-serves", "etcd-saved-kv-restored-kv-serves"],
)
def test_a_snapshot_restored_into_the_other_server_serves_the_same_keys_and_leases(
    source: ServerKind, target: ServerKind, restore: Restore, tmp_path: Path
) -> None:
    saved_from, snapshot = filled_and_saved(source, tmp_path)
    try:
        expected = contents(saved_from)
        expected_revision = revision(saved_from)
    finally:
        saved_from.stop()
    assert status(snapshot)["revision"] == expected_revision
    restored = Server(target, tmp_path / f"restored-{target}")
    restore(snapshot, restored)
    restored.start()
    try:
        assert contents(restored) == expected
        assert revision(restored) == expected_revision
    finally:
        restored.stop()


def test_kv_snapshot_status_of_etcds_file_prints_what_etcdctl_prints(tmp_path: Path) -> None:
    etcd, snapshot = filled_and_saved("etcd", tmp_path)
    etcd.stop()
    assert kv_status(snapshot) == status(snapshot)


def test_etcdctl_snapshot_status_of_kvs_file_prints_what_kv_prints(tmp_path: Path) -> None:
    kv, snapshot = filled_and_saved("kv", tmp_path)
    kv.stop()
    assert status(snapshot) == kv_status(snapshot)
