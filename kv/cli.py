"""The ``kv`` command: ``kv serve`` with etcd's member flags, ``kv snapshot``, ``kv cluster``
(a local cluster to play failures against, `kv.cluster`), ``kv tui`` (the terminal UI,
`tui.command`), ``kv docs`` (the book's site, served locally, `kv.docs_command`),
``kv --version``.

A command line or a systemd unit written for etcd 3.4 should start kv unchanged, so the flags
have etcd's names (``--listen-client-urls``, also as ``--listen-client-urls=URL``), etcd's
defaults (see `kv.server.config`), and etcd's environment variables: every flag ``--some-flag``
can also be given as ``ETCD_SOME_FLAG`` (etcd: ``pkg/flags/flag.go`` ``FlagToEnv``). As in
etcd 3.4, a flag given both ways is refused rather than silently picking one, and ``ETCD_*``
variables kv does not know are logged as unrecognized.

Exit codes: 0 after a clean stop (SIGINT or SIGTERM), 1 for a configuration kv refuses, an
address it cannot bind or a data directory it cannot recover (a corrupt write-ahead log, say),
2 for a command line it cannot parse (an unknown flag, say).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from kv import __version__
from kv.cluster.command import add_cluster_command, run_cluster
from kv.docs_command import add_docs_command, run_docs
from kv.server.config import CLUSTER_STATES, LOG_LEVELS, ServerConfig
from kv.server.flag_values import ConfigError, parse_duration, split_urls

log = logging.getLogger(__name__)

#: The etcd API version kv speaks, shown by ``kv --version``.
ETCD_API_VERSION = "3.4"
ENV_PREFIX = "ETCD"

# etcd's --log-level names mapped onto the standard library's levels.
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
# Close to etcd 3.4's default log lines: "2024-01-02 03:04:05.678901 I | embed: ...".
_LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname).1s | %(name)s: %(message)s"
_LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class EnvError(ConfigError):
    """An ``ETCD_*`` variable kv cannot use (bad value, or a flag given twice)."""


def parse_bool(text: str) -> bool:
    """A Go bool flag's value (strconv.ParseBool)."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(text)


# --8<-- [start:flags]
@dataclass(frozen=True, slots=True)
class Flag:
    """One of etcd's member flags, as ``kv serve`` accepts it."""

    name: str  # "--listen-client-urls"
    parse: Callable[[str], object]  # text -> the ServerConfig field's value
    help: str
    default: str  # as ``etcd --help`` shows it
    choices: tuple[str, ...] | None = None
    #: A Go bool flag: ``--pre-vote`` alone means true; ``--pre-vote=false`` is allowed.
    is_bool: bool = False

    @property
    def field(self) -> str:
        """The `ServerConfig` field: ``--listen-client-urls`` -> ``listen_client_urls``."""
        return self.name.removeprefix("--").replace("-", "_")

    @property
    def env(self) -> str:
        """etcd's environment variable: ``--listen-client-urls`` -> ``ETCD_LISTEN_CLIENT_URLS``."""
        return f"{ENV_PREFIX}_{self.field.upper()}"


FLAGS = (
    Flag("--name", str, "Human-readable name for this member.", "default"),
    Flag("--data-dir", str, "Path to the data directory.", "${name}.etcd"),
    Flag(
        "--listen-client-urls",
        split_urls,
        "List of URLs to listen on for client traffic.",
        "http://localhost:2379",
    ),
    Flag(
        "--advertise-client-urls",
        split_urls,
        "List of this member's client URLs to advertise to the public.",
        "http://localhost:2379",
    ),
    Flag(
        "--listen-peer-urls",
        split_urls,
        "List of URLs to listen on for peer traffic (chapter 4).",
        "http://localhost:2380",
    ),
    Flag(
        "--initial-advertise-peer-urls",
        split_urls,
        "List of this member's peer URLs to advertise to the rest of the cluster.",
        "http://localhost:2380",
    ),
    Flag(
        "--initial-cluster",
        str,
        "Initial cluster configuration for bootstrapping.",
        "default=http://localhost:2380",
    ),
    Flag(
        "--initial-cluster-state",
        str,
        "Initial cluster state ('new' or 'existing').",
        "new",
        CLUSTER_STATES,
    ),
    Flag(
        "--initial-cluster-token",
        str,
        "Initial cluster token for the etcd cluster during bootstrap.",
        "etcd-cluster",
    ),
    Flag("--heartbeat-interval", int, "Time (in milliseconds) of a heartbeat interval.", "100"),
    Flag("--election-timeout", int, "Time (in milliseconds) for an election to timeout.", "1000"),
    Flag(
        "--max-request-bytes",
        int,
        "Maximum client request size in bytes the server will accept.",
        "1572864",
    ),
    Flag(
        "--max-txn-ops",
        int,
        "Maximum number of operations permitted in a transaction (chapter 6).",
        "128",
    ),
    Flag(
        "--log-level",
        str,
        "Configures log level. Only supports debug, info, warn, error, panic, or fatal.",
        "info",
        LOG_LEVELS,
    ),
    Flag(
        "--snapshot-count",
        int,
        "Number of committed transactions to trigger a snapshot to disk (chapter 2).",
        "100000",
    ),
    Flag(
        "--max-snapshots",
        int,
        "Maximum number of snapshot files to retain (0 is unlimited) (chapter 2).",
        "5",
    ),
    Flag(
        "--max-wals",
        int,
        "Maximum number of wal files to retain (0 is unlimited) (chapter 2).",
        "5",
    ),
    Flag(
        "--quota-backend-bytes",
        int,
        "Raise alarms when backend size exceeds the given quota (chapter 2; 0 = 2 GiB).",
        "0",
    ),
    Flag(
        "--backend-batch-interval",
        parse_duration,
        "BackendBatchInterval is the maximum time before commit the backend transaction "
        "(chapter 2; 0 = 100ms).",
        "",
    ),
    Flag(
        "--backend-batch-limit",
        int,
        "BackendBatchLimit is the maximum operations before commit the backend transaction "
        "(chapter 2; 0 = 10000).",
        "0",
    ),
    Flag(
        "--pre-vote",
        parse_bool,
        "Enable to run an additional Raft election phase (chapter 3).",
        "false",
        is_bool=True,
    ),
    Flag(
        "--experimental-snapshot-catchup-entries",
        int,
        "Number of entries for a slow follower to catch-up after compacting the raft storage "
        "entries (chapter 5; etcd 3.5's flag).",
        "5000",
    ),
    Flag(
        "--auto-compaction-retention",
        str,
        "Auto compaction retention length. 0 means disable auto compaction (chapter 10).",
        "0",
    ),
    Flag(
        "--auto-compaction-mode",
        str,
        "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for "
        "duration based retention, defaulting to hours if no time unit is provided (e.g. "
        "'5m'). 'revision' for revision number based retention (chapter 10).",
        "periodic",
    ),
    Flag(
        "--listen-client-http-urls",
        split_urls,
        "List of URLs to listen on for http only client traffic. Enabling this flag removes "
        "http services from --listen-client-urls (chapter 10; etcd 3.5's flag).",
        "",
    ),
    Flag(
        "--listen-metrics-urls",
        split_urls,
        "List of URLs to listen on for the metrics and health endpoints (chapter 10).",
        "",
    ),
    Flag(
        "--experimental-watch-progress-notify-interval",
        parse_duration,
        "Duration of periodical watch progress notification (chapter 8).",
        "10m",
    ),
    Flag(
        "--experimental-enable-lease-checkpoint",
        parse_bool,
        "Enable the leader to send regular checkpoints to other members to prevent reset of "
        "remaining TTL on leader change (chapter 7).",
        "false",
        is_bool=True,
    ),
    Flag(
        "--experimental-enable-lease-checkpoint-persist",
        parse_bool,
        "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived "
        "leases (chapter 7; etcd 3.4.20+, not in its --help).",
        "false",
        is_bool=True,
    ),
    Flag(
        "--experimental-lease-checkpoint-interval",
        parse_duration,
        "kv's own: time between lease checkpoints (chapter 7; etcd 3.4 fixes it at 5m).",
        "5m",
    ),
)
# --8<-- [end:flags]


@dataclass(frozen=True, slots=True)
class ServeFlags:
    """What ``kv serve``'s flags and environment amount to."""

    config: ServerConfig
    env_used: list[str] = field(default_factory=list)  # "ETCD_NAME=x", as etcd logs them
    env_unrecognized: list[str] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    """The ``kv`` argument parser: ``--version`` and the ``serve`` subcommand."""
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
    _add_snapshot_commands(commands)
    add_cluster_command(commands)
    from tui.command import add_tui_command  # argparse only: Textual loads when it runs

    add_tui_command(commands)
    add_docs_command(commands)
    return parser


def serve_flags(given: Mapping[str, str | None], environ: Mapping[str, str]) -> ServeFlags:
    """Combine command-line values (field -> text, None if not given) with ``ETCD_*`` variables.

    etcd 3.4's rules (``pkg/flags/flag.go`` ``SetFlagsFromEnv``, ``verifyEnv``): a variable
    sets a flag not given on the command line; an empty variable is ignored; a variable for a
    flag that *was* given is an error; other ``ETCD_*`` variables are reported unrecognized.

    Raises:
        ConfigError: a bad value, a conflict, or a configuration `ServerConfig` refuses.
    """
    values: dict[str, object] = {}
    explicit: set[str] = set()
    used: list[str] = []
    for flag in FLAGS:
        text = given.get(flag.field)
        if text is not None:
            if flag.env in environ:
                raise EnvError(
                    f'conflicting environment variable "{flag.env}" is shadowed by '
                    "corresponding command-line flag (either unset environment variable or "
                    "disable flag)"
                )
            source = flag.name
        elif environ.get(flag.env):
            text = environ[flag.env]
            source = flag.env
            used.append(f"{flag.env}={text}")
        else:
            continue
        explicit.add(flag.name)
        values[flag.field] = _parse(flag, text, source)
    # etcd: etcdmain/config.go -- a member listening on chosen addresses must say which of
    # them clients should use, or clients would be told "http://localhost:2379".
    if "--listen-client-urls" in explicit and "--advertise-client-urls" not in explicit:
        raise ConfigError(
            "--advertise-client-urls is required when --listen-client-urls is set explicitly"
        )
    known = {flag.env for flag in FLAGS}
    unrecognized = [
        f"{key}={value}"
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX + "_") and (key not in known or not value)
    ]
    return ServeFlags(ServerConfig(**values), used, unrecognized)  # type: ignore[arg-type]


def _parse(flag: Flag, text: str, source: str) -> object:
    if flag.choices is not None and text not in flag.choices:
        raise ConfigError(f'invalid value "{text}" for {source}: want one of {flag.choices}')
    try:
        return flag.parse(text)
    except ValueError:
        raise ConfigError(f'invalid value "{text}" for {source}: parse error') from None


def configure_logging(level: str) -> None:
    """Log to stderr at etcd's ``--log-level``, in lines shaped like etcd 3.4's."""
    logging.basicConfig(
        level=_LOG_LEVELS[level],
        format=_LOG_FORMAT,
        datefmt=_LOG_DATE_FORMAT,
        stream=sys.stderr,
        force=True,
    )


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


# --- kv snapshot status / restore (chapter 2) ----------------------------------------------

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


def _add_snapshot_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
