"""The members' processes: start one, tell whether it still runs, wait until it serves, stop it.

Each member is an ordinary ``python -m kv serve`` process with etcd's flags
(`kv.cluster.layout.Layout.serve_flags`), started in a session of its own
(``start_new_session``): a Ctrl-C in the terminal reaches only the foreground ``kv cluster
start``, which then stops the members in order, and a member started by ``kv cluster
restart`` lives on after that command returns. Its output is appended to
``<data-dir>/<name>.log``, so a restarted member's log continues the old one.

A pid alone does not name a process for long: once a member has exited, the system may give
its pid to an unrelated process. Before a pid is signalled or called running, its command line
is checked to be that member's (`process_command` contains ``--data-dir=<its data dir>``).
A member that exited but was not yet reaped by its parent (a zombie) has no command line, so
it counts as stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import kv
from kv.cluster.layout import ClusterError, Layout, LocalMember, port_in_use

#: The line ``kv serve`` logs once it answers clients (kv.server.app, as etcd's embed).
READY_LINE = b"ready to serve client requests"
#: How long members may take to serve clients after they were started.
READY_TIMEOUT_SECONDS = 30.0
#: How long a member may take to exit after SIGTERM before it gets SIGKILL.
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.05
#: How long a member's restart waits for the ports its last process held (see
#: `wait_ports_free`).
PORT_WAIT_SECONDS = 5.0

#: Asked while members are given time to exit: True to kill the rest at once.
Hurry = Callable[[], bool]


def never() -> bool:
    return False


#: The members this process started and has not reaped yet: pid -> (process, its marker).
_children: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
#: How the members this process started exited: pid -> return code (-9: SIGKILL).
_exit_codes: dict[int, int] = {}


def process_command(pid: int) -> str | None:
    """The command line of process ``pid``, or None if it has exited (zombies included)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():  # Linux: no process to spawn
        try:
            raw = proc.read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    # Elsewhere (macOS, the BSDs): ps. A zombie's state starts with Z.
    result = subprocess.run(
        ["ps", "-o", "stat=,command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    line = result.stdout.strip()
    if result.returncode != 0 or not line or line.startswith("Z"):
        return None
    return line.split(None, 1)[1] if " " in line else None


def data_dir_marker(member: LocalMember) -> str:
    """The part of a member's command line that only that member's process has."""
    return f"--data-dir={member.data_dir}"


def is_running(member: LocalMember, pid: int | None) -> bool:
    """Is ``pid`` a live ``kv serve`` process for ``member``?"""
    if pid is None:
        return False
    reap()
    child = _children.get(pid)
    if child is not None:
        # Our own child: its return code says it all. (Its command line is no help right
        # after it started: the kernel shows an empty one while execve is under way.)
        return child[1] == data_dir_marker(member)
    command = process_command(pid)
    return command is not None and data_dir_marker(member) in command.split()


def spawn(layout: Layout, member: LocalMember) -> tuple[int, int]:
    """Start ``member``'s ``kv serve``; return its pid and where its log stood before.

    The child runs this very kv (``PYTHONPATH`` names this checkout first) with this
    interpreter, so a cluster started from a source tree needs no installation.
    """
    member.data_dir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    source = str(Path(kv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    env.setdefault("GRPC_VERBOSITY", "ERROR")
    # etcd's environment variables would change the members' flags (or clash with them).
    for name in [name for name in env if name.startswith("ETCD_")]:
        del env[name]
    with open(member.log_file, "ab") as log:
        offset = log.tell()
        child = subprocess.Popen(
            [sys.executable, "-m", "kv", "serve", *layout.serve_flags(member)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=layout.root,
            env=env,
            start_new_session=True,
        )
    _children[child.pid] = (child, data_dir_marker(member))
    return child.pid, offset


def reap() -> None:
    """Collect the exit status of the members this process started and that exited."""
    for pid, (child, _) in list(_children.items()):
        code = child.poll()
        if code is not None:
            _exit_codes[pid] = code
            del _children[pid]


def exit_code(pid: int) -> int | None:
    """How a member this process started exited (None: still running, or not ours)."""
    reap()
    return _exit_codes.get(pid)


def describe_exit(code: int) -> str:
    """``-9`` -> ``killed by SIGKILL``; ``1`` -> ``exit status 1``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def last_line(member: LocalMember, offset: int = 0) -> str:
    """The last non-empty line ``member`` logged after ``offset`` (for error messages)."""
    try:
        with open(member.log_file, "rb") as log:
            log.seek(offset)
            lines = [line for line in log.read().decode(errors="replace").splitlines() if line]
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def wait_ready(
    waiting: Iterable[tuple[LocalMember, int, int]], timeout: float = READY_TIMEOUT_SECONDS
) -> None:
    """Wait until every ``(member, pid, log offset)`` logged `READY_LINE` after its offset.

    Raises:
        ClusterError: a member exited first (its last log line says why), or the deadline
            passed.
    """
    pending = list(waiting)
    deadline = time.monotonic() + timeout
    while pending:
        for item in list(pending):
            member, pid, offset = item
            with open(member.log_file, "rb") as log:
                log.seek(offset)
                if READY_LINE in log.read():
                    pending.remove(item)
                    continue
            if not is_running(member, pid):
                why = last_line(member, offset) or "no output"
                raise ClusterError(
                    f"{member.name} exited while starting: {why} (log: {member.log_file})"
                )
        if pending and time.monotonic() > deadline:
            names = ", ".join(member.name for member, _, _ in pending)
            raise ClusterError(
                f"{names} did not serve clients within {timeout:.0f} s "
                f"(logs: {', '.join(str(member.log_file) for member, _, _ in pending)})"
            )
        time.sleep(POLL_SECONDS)


def wait_ports_free(member: LocalMember, timeout: float, *, hint: str) -> None:
    """Wait until nothing listens on ``member``'s ports, for up to ``timeout`` seconds.

    A member that was just killed may still hold them: the kernel frees a dying process's
    memory, and with it the command line `is_running` reads, before it closes its files, so
    for a moment the member has exited yet its listeners are still there (``SO_REUSEADDR``
    on the new listeners does not help: it lets a port in TIME_WAIT be bound again, not one
    that is still listened on). A port still in use after ``timeout`` is somebody else's.

    Raises:
        ClusterError: a port still in use at the deadline, with ``hint``.
    """
    deadline = time.monotonic() + timeout
    for port, use in member.ports:
        while port_in_use(port):
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"port {port} ({member.name}'s {use} port) is still in use {timeout:g} s "
                    f"after {member.name} stopped: {hint}"
                )
            time.sleep(POLL_SECONDS)


def send_signal(member: LocalMember, pid: int | None, signum: signal.Signals) -> bool:
    """Signal ``member``'s process if it is still that member's; False if it was not running."""
    if pid is None or not is_running(member, pid):
        return False
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def stop(
    targets: Iterable[tuple[LocalMember, int | None]],
    grace: float = STOP_GRACE_SECONDS,
    *,
    hurry: Hurry = never,
) -> list[LocalMember]:
    """SIGTERM each running member, wait up to ``grace`` seconds, then SIGKILL the rest.

    Members are signalled together, so stopping a cluster takes one grace period, not one per
    member. Once ``hurry()`` says so (a second Ctrl-C), the rest are killed at once. Returns
    the members that were running.
    """
    running = [(member, pid) for member, pid in targets if send_signal(member, pid, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    killed = False
    while any(is_running(member, pid) for member, pid in running):
        if not killed and (time.monotonic() > deadline or hurry()):
            for member, pid in running:
                send_signal(member, pid, signal.SIGKILL)
            killed = True
        time.sleep(POLL_SECONDS)
    return [member for member, _ in running]
