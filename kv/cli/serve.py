"""``kv serve``: its subcommand's parser (one argument per etcd flag, `kv.cli.flags`) and its
run -- check the configuration, then serve one member until SIGINT or SIGTERM (chapter 1).

Exit codes: 0 after a clean stop (SIGINT or SIGTERM), 1 for a configuration kv refuses, an
address it cannot bind or a data directory it cannot recover (a corrupt write-ahead log, say).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import sys
from collections.abc import Mapping
from typing import NoReturn

from kv.cli.environment import serve_flags
from kv.cli.flags import FLAGS
from kv.cli.logs import configure_logging
from kv.server.flag_values import ConfigError

# The name kv serve's log lines have always carried ("... I | kv.cli: recognized and used
# environment variable ..."), from when the whole command was one module.
log = logging.getLogger("kv.cli")


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``kv serve`` to the ``kv`` parser's subcommands: one argument per `FLAGS` entry."""
    serve = commands.add_parser(
        "serve",
        help="run a member (etcd's member flags; each also as ETCD_<FLAG>)",
        description="Run one kv member. Flags are etcd's; each may also be set as "
        "ETCD_<FLAG_IN_UPPER_SNAKE_CASE>, e.g. ETCD_NAME.",
        allow_abbrev=False,
    )
    for flag in FLAGS:
        # default=None: tells "not given" apart from "given with the default value", which
        # the environment and etcd's --advertise-client-urls rule both need.
        serve.add_argument(
            flag.name,
            default=None,
            nargs="?" if flag.is_bool else None,
            const="true" if flag.is_bool else None,
            metavar=flag.field.upper(),
            choices=flag.choices,
            help=f"{flag.help} (default {flag.default!r}; env {flag.env})",
        )


def run_serve(given: Mapping[str, str | None], environ: Mapping[str, str]) -> int:
    """``kv serve``: check the configuration, then serve until SIGINT or SIGTERM."""
    # Imported here so `kv --version` and usage errors stay fast.
    import uvloop

    from kv.backend import BackendError
    from kv.server import cycle_collector
    from kv.server.app import ListenError, serve
    from kv.server.bootstrap import BootstrapError
    from kv.wal import WalError

    try:
        flags = serve_flags(given, environ)
    except ConfigError as error:
        # "kv serve: error: ..." already says kv; drop the "kv: " of kv-only refusals.
        print(f"kv serve: error: {str(error).removeprefix('kv: ')}", file=sys.stderr)
        return 1
    configure_logging(flags.config.log_level)
    # A crash in C code (gRPC, libuv, SQLite, protobuf) kills the process with a signal and
    # no Python traceback; faulthandler writes every thread's Python stack to the log first,
    # as a Go panic prints its goroutines. (A test cluster's member once died of "double
    # free or corruption" with nothing else in its log.)
    faulthandler.enable()
    cycle_collector.tune_for_serving()  # fewer collections (7% of a member's CPU under puts)
    for used in flags.env_used:
        log.info("recognized and used environment variable %s", used)
    for unrecognized in flags.env_unrecognized:
        log.warning("unrecognized environment variable %s", unrecognized)
    try:
        # uvloop (libuv's event loop) runs the same asyncio code with much less overhead per
        # callback, socket read and thread hand-over, which a server pays on every request;
        # grpc.aio supports it. The TUI keeps Textual's own loop.
        uvloop.run(serve(flags.config))
    except (ListenError, WalError, BackendError, BootstrapError, ConnectionError) as error:
        # A data directory kv refuses to recover from is the operator's to look at: say
        # what and where (the error names the file, and the offset for a corrupt log) in one
        # line, as etcd does, not in a traceback.
        log.critical("%s", error)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 0
    exit_without_teardown(0)


def exit_without_teardown(status: int) -> NoReturn:
    """End the process at once with ``status``, once ``kv serve`` has stopped cleanly.

    By then everything durable is closed (the log, the backend) and the log says so, as
    etcd's does. What is left is the interpreter's own teardown, which collects and frees
    every object one by one: with a million keys in the index, seconds of CPU for nothing
    (etcd's process just ends). So flush what is buffered and leave without it. Only the
    ``kv serve`` command does this, never a function tests call in-process.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
