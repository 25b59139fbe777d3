"""The ``kv tui`` command line (the TUI): the embedded simulator by default, a real cluster
with ``--endpoints``.

Textual and the TUI's modules are imported when the command runs, not when ``kv``'s parser
is built, so ``kv --version`` and ``kv serve`` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.app import App


def _nodes(text: str) -> int:
    from tui.session.session import MAX_NODES  # imported late: kv's parser stays fast

    value = int(text)
    if not 1 <= value <= MAX_NODES:
        raise argparse.ArgumentTypeError(f"--nodes must be 1 to {MAX_NODES}, not {value}")
    return value


def add_tui_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``kv tui`` to the ``kv`` parser's subcommands."""
    tui = commands.add_parser(
        "tui",
        help="watch Raft work in a terminal UI: a simulated cluster, or a real one",
        description="Open the kv terminal UI: a simulated cluster of --nodes members run from "
        "--seed (press ? inside for the keys), a saved run (--load), or a real cluster "
        "(--endpoints).",
        allow_abbrev=False,
    )
    tui.add_argument("--nodes", type=_nodes, default=3, help="members, 1 to 7 (default 3)")
    tui.add_argument("--seed", type=int, default=None, help="the run's seed (default: random)")
    tui.add_argument("--load", type=Path, default=None, help="open a saved run (a trace file)")
    tui.add_argument(
        "--endpoints",
        default=None,
        help="attach to a real cluster: comma-separated client URLs (kv or etcd)",
    )
    tui.add_argument(
        "--cluster-dir",
        type=Path,
        default=None,
        help="with --endpoints: the directory of the `kv cluster` they belong to, so that "
        "kill, restart, partition and heal work from the TUI",
    )
    tui.add_argument("--no-pre-vote", action="store_true", help="members campaign without PreVote")
    tui.add_argument(
        "--no-check-quorum", action="store_true", help="leaders do not step down without a quorum"
    )


class TuiError(Exception):
    """The command line asks for something that cannot be opened (the exit status, and
    why)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def run_tui(args: argparse.Namespace) -> int:
    """``kv tui``: run the app until the user quits; the exit status."""
    try:
        app = make_app(args)
    except TuiError as error:
        print(f"kv tui: error: {error}", file=sys.stderr)
        return error.status
    app.run()
    return 0


def make_app(args: argparse.Namespace) -> App[None]:
    """The app ``kv tui`` runs for these arguments: attach mode with ``--endpoints``, else
    the embedded simulator (a new run, or a loaded one).

    Raises:
        TuiError: the arguments do not go together, or the trace cannot be read.
    """
    if args.endpoints:
        from tui.attach import AttachApp

        endpoints = [url for url in args.endpoints.split(",") if url]
        return AttachApp(endpoints, cluster_dir=args.cluster_dir)
    if args.cluster_dir is not None:
        raise TuiError(2, "--cluster-dir goes with --endpoints")
    from tui.app import SimApp
    from tui.session import Session
    from tui.speed import tui_config

    if args.load is not None:
        try:
            session = Session.load(args.load)
        except (OSError, ValueError, KeyError) as error:
            raise TuiError(1, f"cannot load {args.load}: {error}") from None
    else:
        seed = args.seed if args.seed is not None else _random_seed()
        session = Session.new(
            nodes=args.nodes,
            seed=seed,
            pre_vote=not args.no_pre_vote,
            check_quorum=not args.no_check_quorum,
            config=tui_config(),
        )
    return SimApp(session)


def _random_seed() -> int:
    # The one random choice of a run: shown in the status line, so the run can be replayed.
    import random

    return random.SystemRandom().randrange(1000)
