"""``kv snapshot status`` and ``kv snapshot restore``: etcdctl's commands, for etcd's snapshot
files (chapter 2).
"""

from __future__ import annotations

import argparse
import sys

from kv.cli.logs import configure_logging
from kv.server.flag_values import ConfigError, split_urls

_SNAPSHOT_STATUS_HELP = """\
Print etcdctl's four columns for a snapshot file (or a backend, member/snap/db). A snapshot
saved from kv or from etcd is etcd's bbolt file, and the columns are etcdctl's own:

  HASH        CRC-32C over each bucket's name, keys and values, in bbolt's order.
  REVISION    the revision of the last key of bucket "key".
  TOTAL KEYS  the keys of all buckets.
  TOTAL SIZE  the bbolt file's size, without the SHA-256 that `etcdctl snapshot save`
              appends.

kv's older snapshots and its own backend are SQLite: for them the hash is over each table
in name order (its name, then its rows in key order, each column as bytes), the revision
the highest in table kv, the keys the rows of all tables, the size page count x page size.
"""

_SNAPSHOT_RESTORE_HELP = """\
Make a new data directory from a snapshot file (from `etcdctl snapshot save`, against kv or
etcd), as a new member of a new cluster: `kv serve --data-dir DIR` then starts with the
snapshot's keys, revisions and leases. Flags and defaults are etcdctl 3.4's; the directory
must not exist.
"""


def add_snapshot_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``kv snapshot status`` and ``kv snapshot restore``: etcdctl's, for etcd's snapshot files."""
    from kv.server.disk.snapshot_file import WRITE_OUT

    snapshot = commands.add_parser(
        "snapshot",
        help="inspect or restore a snapshot file (etcdctl's commands)",
        description="etcdctl's `snapshot status` and `snapshot restore`, for snapshots saved "
        "from kv or etcd (etcd's bbolt format; kv's older SQLite ones too). Save one with "
        "`etcdctl snapshot save FILE`.",
        allow_abbrev=False,
    )
    actions = snapshot.add_subparsers(dest="snapshot_command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    status = actions.add_parser(
        "status",
        help="print the hash, revision, total keys and total size of a snapshot file",
        description=_SNAPSHOT_STATUS_HELP,
        formatter_class=raw,
        allow_abbrev=False,
    )
    status.add_argument("file", metavar="FILE")
    status.add_argument(
        "-w",
        "--write-out",
        default="simple",
        choices=WRITE_OUT,
        help="set the output format (default 'simple', as etcdctl)",
    )
    restore = actions.add_parser(
        "restore",
        help="make a new data directory from a snapshot file",
        description=_SNAPSHOT_RESTORE_HELP,
        formatter_class=raw,
        allow_abbrev=False,
    )
    restore.add_argument("file", metavar="FILE")
    for name, default, text in (
        ("--data-dir", "", "Path to the data directory (default: ${name}.etcd)"),
        ("--name", "default", "Human-readable name for this member"),
        (
            "--initial-cluster",
            "default=http://localhost:2380",
            "Initial cluster configuration for restore bootstrap",
        ),
        (
            "--initial-cluster-token",
            "etcd-cluster",
            "Initial cluster token for the etcd cluster during restore bootstrap",
        ),
        (
            "--initial-advertise-peer-urls",
            "http://localhost:2380",
            "List of this member's peer URLs to advertise to the rest of the cluster",
        ),
    ):
        restore.add_argument(name, default=default, help=f"{text} (default {default!r})")
    restore.add_argument(
        "--skip-hash-check",
        action="store_true",
        help="Ignore snapshot integrity hash value (required if copied from data directory)",
    )


def run_snapshot(args: argparse.Namespace) -> int:
    """``kv snapshot status|restore``: 0 on success; 1 and ``Error: ...`` as etcdctl."""
    from pathlib import Path

    from kv.backend import BackendError
    from kv.server.disk.snapshot_file import (
        RestoreConfig,
        RestoreError,
        format_status,
        restore,
        summarize_snapshot,
    )

    path = Path(args.file)
    try:
        if args.snapshot_command == "status":
            print(format_status(summarize_snapshot(path), args.write_out))
            return 0
        configure_logging("info")
        restore(
            RestoreConfig(
                snapshot=path,
                data_dir=args.data_dir,
                name=args.name,
                initial_cluster=args.initial_cluster,
                initial_cluster_token=args.initial_cluster_token,
                initial_advertise_peer_urls=split_urls(args.initial_advertise_peer_urls),
                skip_hash_check=args.skip_hash_check,
            )
        )
    except FileNotFoundError:
        # Go's os error for the file etcdctl could not stat (status) or open (restore).
        operation = "stat" if args.snapshot_command == "status" else "open"
        print(f"Error: {operation} {args.file}: no such file or directory", file=sys.stderr)
        return 1
    except (BackendError, ConfigError, RestoreError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0
