"""The ``kv tui`` command line (the TUI): the embedded simulator by default, a real cluster
with ``--endpoints``.

Textual and the TUI's modules are imported when the command runs, not when ``kv``'s parser
is built, so ``kv --version`` and ``kv serve`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

MAX_NODES = 7


def _nodes(text: str) -> int:
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
    tui.add_argument("--no-pre-vote", action="store_true", help="members campaign without PreVote")
    tui.add_argument(
        "--no-check-quorum", action="store_true", help="leaders do not step down without a quorum"
    )


def run_tui(args: argparse.Namespace) -> int:
    """``kv tui``: run the app until the user quits; the exit status."""
    if args.endpoints:
        return _attach([url for url in args.endpoints.split(",") if url])
    from tui.app import SimApp
    from tui.session import Session

    if args.load is not None:
        try:
            session = Session.load(args.load)
        except (OSError, ValueError, KeyError) as error:
            print(f"kv tui: error: cannot load {args.load}: {error}", file=sys.stderr)
            return 1
    else:
        seed = args.seed if args.seed is not None else _random_seed()
        session = Session.new(
            nodes=args.nodes,
            seed=seed,
            pre_vote=not args.no_pre_vote,
            check_quorum=not args.no_check_quorum,
        )
    SimApp(session).run()
    return 0


def _random_seed() -> int:
    # The one random choice of a run: shown in the status line, so the run can be replayed.
    import random

    return random.SystemRandom().randrange(1000)


def _attach(endpoints: list[str]) -> int:
    # Attach mode is its own package (tui.attach); found by name so that this command works
    # (and says so) in a build without it.
    try:
        attach = importlib.import_module("tui.attach")
    except ImportError:
        print("kv tui: error: attach mode (--endpoints) is not in this build yet", file=sys.stderr)
        return 1
    attach.AttachApp(endpoints).run()
    return 0
