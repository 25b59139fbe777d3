"""The ``kv cluster`` command line: ``start``, ``status``, ``kill``, ``stop``, ``restart``,
``partition`` and ``heal``.

Every subcommand takes ``--data-dir`` (default ``kv-cluster``): the directory of the
cluster's state file, members' data and logs, which is how a command in one terminal finds
the cluster that ``kv cluster start`` runs in another. A refusal is one line on stderr,
``kv cluster: error: ...``, and exit status 1; a usage error exits with 2.

The heavy modules (gRPC) are imported when a subcommand runs, not when the parser is built,
so ``kv --version`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from kv.cluster.layout import (
    DEFAULT_BASE_PORT,
    DEFAULT_DATA_DIR,
    DEFAULT_SIZE,
    LAYOUT_FLAGS,
    MAX_SIZE,
    ClusterError,
    Layout,
)

_START_HELP = """\
Start a local cluster of kv members on 127.0.0.1, each a `kv serve` process with etcd's
flags. Member n<i> listens for clients on BASE+10*(i-1), for peers on the next port and
serves /metrics and /health on the one after (n1: 12379, 12380 and 12381; n2: 12389, 12390 and
12391, ...). Logs go to DATA_DIR/<name>.log. Stays in the foreground: Ctrl-C stops every
member. Starting again in the same --data-dir resumes the cluster with its data.

Flags after `--` are passed to every member's `kv serve`, each as --flag=value (a bool flag
may be bare), and kept for `kv cluster restart`:

  kv cluster start --fresh -- --quota-backend-bytes=1000000 --auto-compaction-retention=1h
"""


def add_cluster_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``kv cluster ...`` to the ``kv`` parser's subcommands."""
    cluster = commands.add_parser(
        "cluster",
        help="run a local N-member cluster and play failures against it",
        description="Run a local cluster of kv members and kill, restart or partition them.",
        allow_abbrev=False,
    )
    actions = cluster.add_subparsers(dest="cluster_command", metavar="COMMAND", required=True)
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"the cluster's directory: state file, members' data and logs "
        f"(default {DEFAULT_DATA_DIR!r})",
    )

    def add(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return actions.add_parser(
            name,
            help=help,
            description=description or help,
            parents=[data_dir],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )

    start = add(
        "start", "start the cluster and stay in the foreground (Ctrl-C stops it)", _START_HELP
    )
    start.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help=f"members (default {DEFAULT_SIZE}, at most {MAX_SIZE})",
    )
    start.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help=f"n1's client port; its peer and metrics ports are the next two "
        f"(default {DEFAULT_BASE_PORT})",
    )
    start.add_argument(
        "--heartbeat-interval", type=int, help="passed to every member (ms; kv serve's default 100)"
    )
    start.add_argument(
        "--election-timeout", type=int, help="passed to every member (ms; kv serve's default 1000)"
    )
    start.add_argument(
        "--pre-vote",
        action="store_true",
        help="run every member with --pre-vote (Raft's PreVote, chapter 3; off by default, as "
        "in etcd 3.4): a member cut off and back does not disrupt the leader",
    )
    start.add_argument(
        "--fresh", action="store_true", help="delete the data of a cluster that ran here before"
    )
    start.add_argument(
        "member_flags",
        nargs="*",
        metavar="-- FLAG",
        help="kv serve flags for every member, after `--` (e.g. -- --quota-backend-bytes=1000000)",
    )
    add("status", "show each member: up or down, pid, leader, term, Raft index, partition")
    add("kill", "SIGKILL members (a crash)").add_argument("names", nargs="+", metavar="NAME")
    add("stop", "SIGTERM members; without a NAME, stop the whole cluster").add_argument(
        "names", nargs="*", metavar="NAME"
    )
    add("restart", "start members again with the same flags").add_argument(
        "names", nargs="+", metavar="NAME"
    )
    add(
        "partition",
        "cut the named members off from the others",
        "Cut the named members off from all the others: `partition n1` isolates n1; "
        "`partition n1 n2` splits the cluster into {n1, n2} and the rest. The named members "
        "still reach each other, and so do the rest. Replaces any earlier partition.",
    ).add_argument("names", nargs="+", metavar="NAME")
    add("heal", "undo the partition: every member reaches every other again")
    slow = add(
        "slow-disk",
        "make a member's WAL fsyncs slower (chapter 10)",
        "Make each fsync of the member's WAL take DELAY longer (a Go duration: 1500ms, 2s), as "
        "a failing or overloaded disk would; `slow-disk NAME 0` heals it. A restart heals it too.",
    )
    slow.add_argument("names", nargs=1, metavar="NAME")
    slow.add_argument("delay", metavar="DELAY")


def run_cluster(args: argparse.Namespace) -> int:
    """Run ``kv cluster <COMMAND>``; its exit code."""
    root = Path(args.data_dir)
    try:
        if args.cluster_command == "start":
            layout = Layout(
                root,
                size=args.size,
                base_port=args.base_port,
                heartbeat_interval=args.heartbeat_interval,
                election_timeout=args.election_timeout,
                pre_vote=args.pre_vote,
                member_flags=check_member_flags(args.member_flags),
            )
            return _start(layout, args.data_dir, fresh=args.fresh)
        names = getattr(args, "names", [])
        for line in _control(args.cluster_command, root, names, getattr(args, "delay", "")):
            print(line)
    except (ClusterError, OSError) as error:
        print(f"kv cluster: error: {error}", file=sys.stderr)
        return 1
    return 0


def check_member_flags(flags: list[str]) -> tuple[str, ...]:
    """The flags given after ``kv cluster start --``, checked before any member starts.

    Each must be one of ``kv serve``'s flags (`kv.cli.FLAGS`) that the layout does not set
    itself, written ``--flag=value`` so that one word is one flag (a bool flag may be bare).

    Raises:
        ClusterError: the first flag that is not.
    """
    from kv.cli import FLAGS  # kv.cli imports this module: only when a command runs

    known = {flag.name: flag for flag in FLAGS}
    for text in flags:
        name, equals, _ = text.partition("=")
        flag = known.get(name)
        if flag is None:
            raise ClusterError(f"{text!r} after -- is not a kv serve flag (see kv serve --help)")
        if name in LAYOUT_FLAGS:
            raise ClusterError(f"{name} is set by kv cluster for each member: it cannot be given")
        if not equals and not flag.is_bool:
            raise ClusterError(f"give {name} as {name}=VALUE after --")
    return tuple(flags)


def _control(command: str, root: Path, names: list[str], delay: str = "") -> list[str]:
    from kv.cluster import control, status
    from kv.cluster.state import require

    for name in names:  # every name checked before anything is done
        require(root).layout.member(name)
    if command == "status":
        state = control.require_running(root)
        lines = [status.format_table(state.layout, status.collect(state))]
        if state.partition:
            from kv.cluster.faults import describe

            lines.append(f"partition: {describe(state.layout, state.partition)}")
        if not control.supervisor_running(state):
            lines.append(
                f"no `kv cluster start` runs for it any more: "
                f"`{_prog()} cluster stop --data-dir {root}` stops its members"
            )
        return lines
    if command == "kill":
        return [control.kill(root, name) for name in names]
    if command == "stop":
        if not names:
            return [control.stop_cluster(root)]
        return [control.stop(root, name) for name in names]
    if command == "restart":
        return [control.restart(root, name) for name in names]
    if command == "partition":
        return control.partition(root, names)
    if command == "slow-disk":
        return [control.slow_disk(root, names[0], delay)]
    assert command == "heal", command
    return control.heal(root)


def _prog() -> str:
    """How this command was run: ``kv`` (the installed script) or ``python3 -m kv``."""
    return "kv" if Path(sys.argv[0]).name == "kv" else f"{Path(sys.executable).name} -m kv"


def _start(layout: Layout, data_dir: str, *, fresh: bool) -> int:
    """``kv cluster start``: start, print how to use it, watch, stop on Ctrl-C (or SIGTERM, or
    SIGHUP)."""
    from kv.cluster import processes, supervisor

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGHUP too: a closed terminal stops the cluster instead of leaving its members behind
    # (they run in sessions of their own, so the hangup does not reach them).
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    handlers = {signum: signal.getsignal(signum) for signum in stop_signals}
    try:
        for signum in stop_signals[1:]:  # while starting, they abort as Ctrl-C does
            signal.signal(signum, interrupt)
        me = (os.getpid(), processes.process_command(os.getpid()) or "")
        say(f"starting {layout.size} members in {layout.root} ...")
        try:
            started = supervisor.start(layout, fresh=fresh, supervisor=me)
        except KeyboardInterrupt:
            say("interrupted: every member started was stopped")
            return 1
        requests: list[int] = []

        def request_stop(signum: int, frame: FrameType | None) -> None:
            requests.append(signum)

        for signum in stop_signals:
            signal.signal(signum, request_stop)
        say(_banner(started.state.pids, layout, data_dir, resumed=started.resumed))
        try:
            supervisor.supervise(
                layout,
                lambda line: say(f"[{time.strftime('%H:%M:%S')}] {line}"),
                lambda: bool(requests),
            )
        finally:  # whatever ended the watch, no member is left behind
            say("stopping every member (Ctrl-C again to kill them at once) ...")
            stopped = supervisor.stop_all(layout, hurry=lambda: len(requests) > 1)
        names = " ".join(member.name for member in stopped)
        say(f"stopped {names or 'nothing (every member was down)'}")
        return 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def say(text: str) -> None:
    """Print a line now; a terminal that was closed (SIGHUP) must not stop the stopping."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _etcdctl_lines(layout: Layout) -> list[str]:
    """How to reach the cluster with etcdctl. With ``ETCDCTL_ENDPOINTS`` exported, etcdctl 3.4
    refuses ``--endpoints`` ("conflicting environment variable ... is shadowed by corresponding
    command-line flag"): one member alone is asked by setting the variable for one command."""
    one = layout.members[-1]
    return [
        f"  export ETCDCTL_API=3 ETCDCTL_ENDPOINTS={layout.endpoints}",
        "  etcdctl endpoint status -w table       # every member: leader, term, Raft index",
        "  etcdctl put greeting hello && etcdctl get greeting",
        f"  ETCDCTL_ENDPOINTS={one.endpoint} etcdctl get greeting --consistency=s"
        f"   # {one.name} alone",
    ]


def _banner(pids: dict[str, int | None], layout: Layout, data_dir: str, *, resumed: bool) -> str:
    """What ``kv cluster start`` prints once every member serves."""
    rows = [("NAME", "CLIENT URL", "PEER URL", "METRICS URL", "ID", "PID", "LOG")]
    for member in layout.members:
        rows.append(
            (
                member.name,
                member.client_url,
                member.peer_url,
                member.metrics_url,
                member.hex_id,
                str(pids.get(member.name)),
                str(Path(data_dir) / member.log_file.name),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    prog = f"{_prog()} cluster"
    where = "" if data_dir == DEFAULT_DATA_DIR else f" --data-dir {data_dir}"
    first = layout.members[0].name
    controls = [
        (f"{prog} status{where}", "each member: up or down, leader, term, Raft index"),
        (f"{prog} kill {first}{where}", f"SIGKILL {first} (a crash)"),
        (f"{prog} stop {first}{where}", f"SIGTERM {first} (a clean stop)"),
        (f"{prog} restart {first}{where}", f"start {first} again with the same flags"),
        (f"{prog} partition {first}{where}", f"cut {first} off from the others"),
        (f"{prog} heal{where}", "undo the partition"),
    ]
    width = max(len(command) for command, _ in controls)
    how = "resumed with their data" if resumed else "a new cluster"
    return "\n".join(
        [
            f"{layout.size} members serve ({how}):",
            "",
            *table,
            "",
            "Talk to it with etcdctl, from another terminal:",
            "",
            *_etcdctl_lines(layout),
            "",
            "Play failures against it, from another terminal in this directory:",
            "",
            *(f"  {command.ljust(width)}   # {what}" for command, what in controls),
            "",
            "Ctrl-C here stops every member.",
        ]
    )
