"""The ``kv`` command (chapter 1): ``kv serve`` with etcd's member flags, ``kv snapshot``,
``kv cluster`` (a local cluster to play failures against, `kv.cluster`), ``kv tui`` (the
terminal UI, `tui.command`), ``kv docs`` (the book's site, served locally, `kv.cli.docs`),
``kv --version``.

A command line or a systemd unit written for etcd 3.4 should start kv unchanged: ``kv serve``
takes etcd's flags, with etcd's names, defaults and ``ETCD_*`` environment variables.

Exit codes: 0 after a clean stop (SIGINT or SIGTERM), 1 for a configuration kv refuses, an
address it cannot bind or a data directory it cannot recover (a corrupt write-ahead log, say),
2 for a command line it cannot parse (an unknown flag, say).

Reading order:

* `kv.cli.flags` -- `FLAGS`, etcd's member flags as ``kv serve`` accepts them (`Flag`).
* `kv.cli.environment` -- `serve_flags`: the command line and the ``ETCD_*`` variables
  combined into one `kv.server.config.ServerConfig`, by etcd 3.4's rules.
* `kv.cli.logs` -- the member's log lines, shaped like etcd's.
* `kv.cli.serve` -- ``kv serve``: its parser and its run.
* `kv.cli.snapshot` -- ``kv snapshot status|restore``, etcdctl's (chapter 2).
* `kv.cli.docs` -- ``kv docs``: the book's site, built and served on this machine.
* `kv.cli.command` -- the ``kv`` parser and `main`, the console script's entry point.
* `kv.cli.flags_table` -- `FLAGS` as chapter 10's table (``python3 -m kv.cli.flags_table``).
"""

from kv.cli.command import ETCD_API_VERSION, build_parser, main
from kv.cli.environment import EnvError, ServeFlags, serve_flags
from kv.cli.flags import ENV_PREFIX, FLAGS, Flag, parse_bool
from kv.cli.logs import configure_logging
from kv.cli.serve import exit_without_teardown, run_serve
from kv.cli.snapshot import run_snapshot

__all__ = [
    "ENV_PREFIX",
    "ETCD_API_VERSION",
    "FLAGS",
    "EnvError",
    "Flag",
    "ServeFlags",
    "build_parser",
    "configure_logging",
    "exit_without_teardown",
    "main",
    "parse_bool",
    "run_serve",
    "run_snapshot",
    "serve_flags",
]
