"""The ``kv`` command itself: its parser (``--version`` and one subcommand per module of
`kv.cli`, plus ``kv cluster``'s and ``kv tui``'s from their own packages) and `main`, which
runs the subcommand asked for (chapter 1).

Exit codes: 2 for a command line it cannot parse (an unknown flag, say); otherwise the
subcommand's.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from kv import __version__
from kv.cli.docs import add_docs_command, run_docs
from kv.cli.flags import FLAGS
from kv.cli.serve import add_serve_command, run_serve
from kv.cli.snapshot import add_snapshot_commands, run_snapshot
from kv.cluster.command import add_cluster_command, run_cluster

#: The etcd API version kv speaks, shown by ``kv --version``.
ETCD_API_VERSION = "3.4"


def build_parser() -> argparse.ArgumentParser:
    """The ``kv`` argument parser: ``--version`` and the subcommands."""
    parser = argparse.ArgumentParser(
        prog="kv",
        description="kv: an educational etcd that speaks etcd's v3 gRPC API.",
        allow_abbrev=False,  # etcd's flag package matches whole names only
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"kv {__version__} (etcd API {ETCD_API_VERSION})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_serve_command(commands)
    add_snapshot_commands(commands)
    add_cluster_command(commands)
    from tui.command import add_tui_command  # argparse only: Textual loads when it runs

    add_tui_command(commands)
    add_docs_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kv`` command; return its exit code."""
    # gRPC's C core logs connection chatter (GOAWAY, reconnects between peers) at INFO on
    # stderr; only its errors belong in a member's log. Set before grpc is imported.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error (code 2)
        return stop.code if isinstance(stop.code, int) else 1
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "snapshot":
        return run_snapshot(args)
    if args.command == "cluster":
        return run_cluster(args)
    if args.command == "tui":
        from tui.command import run_tui

        return run_tui(args)
    if args.command == "docs":
        return run_docs(args)
    given = {flag.field: getattr(args, flag.field) for flag in FLAGS}
    return run_serve(given, os.environ)
