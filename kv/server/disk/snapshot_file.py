"""Snapshot files: ``kv snapshot status`` and ``kv snapshot restore`` (chapter 2).

``etcdctl snapshot save FILE`` asks a member for a copy of its backend (the Snapshot RPC,
`kv.server.requests.server.Server.snapshot`) and writes it to FILE followed by its SHA-256.
kv sends etcd's own file format, bbolt (`kv.server.disk.etcd_db`), so FILE is the same kind
of file whichever server it came from: etcdctl's ``snapshot status`` and ``snapshot restore``
read kv's, and kv's two commands, with etcdctl's flags, defaults, output and messages, read
etcd's:

* `format_status`: ``kv snapshot status FILE [-w simple|table|json]``, etcdctl's four
  columns (`summarize`).
* `restore`: ``kv snapshot restore FILE --data-dir DIR [--name ...]`` makes a data directory
  that ``kv serve --data-dir DIR`` starts from, with the snapshot's keys, revisions and
  leases, as a new member of a new cluster (etcd: ``clientv3/snapshot/v3_snapshot.go``,
  ``Restore``).

Both also accept kv's older snapshots, SQLite files (what the Snapshot RPC sent before it sent
etcd's format, or a copy of a kv ``member/snap/db``): the first bytes tell the two apart.

What restore writes, as etcd does: the backend (the hash checked and cut off, the consistent
index set to the number of members), and a new log -- the new member's and cluster's ids in
the log's metadata, a hard state (term 1, commit = number of members), and a snapshot marker
at that index, in the log and as a ``.snap`` file, that says the backend holds everything up
to it. etcd also logs one ConfChangeAddNode entry per member below that index; kv writes no
entries: the snapshot's configuration names the voters for Raft, and the backend's member
table (rewritten with the new cluster's members) names them for the Cluster API. The
directory is built under a temporary name and renamed into place, so a failed restore leaves
nothing behind (etcd leaves a partial directory).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from kv.api.etcdserverpb.etcdserver_pb2 import Metadata
from kv.api.raftpb import raft_pb2
from kv.api.walpb import record_pb2
from kv.backend import Backend, BackendError, FileSummary, summarize_file
from kv.bbolt import BoltError, open_file
from kv.fsutil import fsync_dir
from kv.membership import Cluster
from kv.server.applied.members import MemberStore
from kv.server.config import (
    DEFAULT_INITIAL_CLUSTER,
    DEFAULT_NAME,
    DEFAULT_PEER_URL,
    check_bootstrap,
)
from kv.server.disk.data_dir import DataDir
from kv.server.disk.etcd_db import restore_etcd_db, summarize
from kv.server.flag_values import go_quote
from kv.snap import Snapshotter
from kv.wal import WAL

log = logging.getLogger(__name__)

#: etcdctl's -w/--write-out values that ``snapshot status`` supports in kv.
WRITE_OUT = ("simple", "table", "json")
#: The term of the restored log: etcd starts the new cluster's log in term 1.
RESTORE_TERM = 1


class RestoreError(Exception):
    """``kv snapshot restore`` cannot restore; the message is etcd's where etcd has one."""


#: The first bytes of every SQLite database (kv's own backend file).
SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite(path: Path) -> bool:
    """Whether ``path`` is a SQLite file (kv's backend) rather than bbolt (etcd's)."""
    with path.open("rb") as file:
        return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER


# --- status --------------------------------------------------------------------------------


def summarize_snapshot(path: Path) -> FileSummary:
    """etcdctl's four columns for a snapshot or backend file, etcd's format or kv's SQLite.

    Raises:
        FileNotFoundError: there is no such file.
        kv.backend.BackendError: the file is neither, or fails its integrity check.
    """
    if is_sqlite(path):
        return summarize_file(path)
    try:
        return summarize(open_file(path))
    except BoltError as error:
        raise BackendError(str(error)) from error


def human_bytes(size: int) -> str:
    """A size as etcdctl shows it (go-humanize ``Bytes``: powers of 1000, one decimal < 10)."""
    if size < 10:
        return f"{size} B"
    exponent = min(math.floor(math.log(size) / math.log(1000)), 6)
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    suffix = ("B", "kB", "MB", "GB", "TB", "PB", "EB")[exponent]
    return f"{value:.1f} {suffix}" if value < 10 else f"{value:.0f} {suffix}"


def _table(header: list[str], row: list[str]) -> str:
    """One row under a header, as etcdctl's tablewriter draws it (header centred, cells right)."""
    widths = [max(len(h), len(c)) for h, c in zip(header, row, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def centre(text: str, width: int) -> str:
        left = (width - len(text)) // 2
        return " " * left + text + " " * (width - len(text) - left)

    titles = "|" + "|".join(f" {centre(h, w)} " for h, w in zip(header, widths, strict=True)) + "|"
    cells = "|" + "|".join(f" {c:>{w}} " for c, w in zip(row, widths, strict=True)) + "|"
    return "\n".join([rule, titles, rule, cells, rule])


def format_status(summary: FileSummary, write_out: str = "simple") -> str:
    """``snapshot status`` output in etcdctl's ``simple``, ``table`` or ``json`` form."""
    if write_out == "json":
        fields = {
            "hash": summary.hash,
            "revision": summary.revision,
            "totalKey": summary.total_keys,
            "totalSize": summary.total_size,
        }
        return json.dumps(fields, separators=(",", ":"))
    row = [
        f"{summary.hash:x}",
        str(summary.revision),
        str(summary.total_keys),
        human_bytes(summary.total_size),
    ]
    if write_out == "table":
        return _table(["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"], row)
    if write_out == "simple":
        return ", ".join(row)
    raise ValueError(f"unknown output format {write_out!r} (want one of {WRITE_OUT})")


# --- restore -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreConfig:
    """``kv snapshot restore``'s flags, with etcdctl 3.4's defaults."""

    snapshot: Path
    data_dir: str = ""  # "" = f"{name}.etcd", as etcdctl
    name: str = DEFAULT_NAME
    initial_cluster: str = DEFAULT_INITIAL_CLUSTER
    initial_cluster_token: str = "etcd-cluster"
    initial_advertise_peer_urls: tuple[str, ...] = (DEFAULT_PEER_URL,)
    skip_hash_check: bool = False


# --8<-- [start:restore]
def restore(config: RestoreConfig) -> Path:
    """Make a new data directory from a snapshot file; return its path.

    Unlike ``kv serve``, restore does not rewrite ``--initial-cluster`` from ``--name``
    (neither does etcdctl): a name other than ``default`` needs an ``--initial-cluster`` that
    names it.

    Raises:
        RestoreError: the directory exists (``data-dir "DIR" exists``).
        kv.server.flag_values.ConfigError: the member flags do not fit together (etcd's messages).
        kv.backend.SnapshotHashError: the hash is missing or wrong (etcd's messages).
        kv.backend.BackendError: the file is not a kv snapshot.
        FileNotFoundError: there is no snapshot file.
    """
    check_bootstrap(config.name, config.initial_cluster, config.initial_advertise_peer_urls)
    cluster = Cluster.from_initial_cluster(config.initial_cluster, config.initial_cluster_token)
    member = cluster.member_named(config.name)
    root = Path(config.data_dir or f"{config.name}.etcd")
    if root.exists():
        raise RestoreError(f"data-dir {go_quote(str(root))} exists")
    config.snapshot.stat()  # no snapshot: fail before making anything
    log.info("restoring snapshot %s into %s", config.snapshot, root)
    staging = root.with_name(root.name + ".restoring")
    shutil.rmtree(staging, ignore_errors=True)  # left by a restore that crashed
    try:
        _write_data_dir(DataDir(staging), config, cluster, member.id)
        staging.rename(root)
        fsync_dir(root.absolute().parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("restored snapshot %s into %s as member %x", config.snapshot, root, member.id)
    return root


def _write_data_dir(layout: DataDir, config: RestoreConfig, cluster: Cluster, me: int) -> None:
    members = sorted(m.id for m in cluster.members)
    index = len(members)  # etcd: one bootstrap entry per member, all covered by the snapshot
    restore_backend = Backend.restore_from if is_sqlite(config.snapshot) else restore_etcd_db
    try:
        backend = restore_backend(
            config.snapshot,
            layout.backend,
            consistent_index=index,
            skip_hash_check=config.skip_hash_check,
        )
    except BoltError as error:
        raise BackendError(str(error)) from error
    # The old cluster's members go; the new cluster's come (etcd: restore rewrites them too).
    backend.forget_members()
    store = MemberStore(backend)
    for member in cluster.members:
        store.add(member)
    backend.commit(index)
    backend.close()
    metadata = Metadata(NodeID=me, ClusterID=cluster.id)
    with WAL.create(layout.wal, metadata.SerializeToString()) as wal:
        state = raft_pb2.HardState(term=RESTORE_TERM, vote=members[0], commit=index)
        wal.save([], state)
        wal.save_snapshot(record_pb2.Snapshot(index=index, term=RESTORE_TERM))
    snapshot = raft_pb2.Snapshot(
        metadata=raft_pb2.SnapshotMetadata(
            index=index, term=RESTORE_TERM, conf_state=raft_pb2.ConfState(voters=members)
        )
    )
    Snapshotter(layout.snap).save(snapshot)


# --8<-- [end:restore]
