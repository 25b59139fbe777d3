"""``kv cluster start``: start every member, then stay in the foreground until Ctrl-C.

The foreground process (the *supervisor*) starts the members, waits until each serves
clients, and then only watches: it reports members going down and coming back (whoever
killed or restarted them), and on Ctrl-C or SIGTERM it stops every member the state file
lists -- SIGTERM to all, SIGKILL to those still running after a grace period, at once on a
second Ctrl-C. It keeps no member handles of its own for that, so members that a control
command restarted are stopped the same way as the ones it started.

Starting again in the same data directory resumes the cluster with its data (the members'
write-ahead logs are there; etcd and kv both ignore ``--initial-cluster`` then), as long as
size and ports are the same; ``--fresh`` deletes the old members' data first.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from kv.cluster import control, faults, processes
from kv.cluster.layout import ClusterError, Layout, LocalMember, check_ports_free
from kv.cluster.state import STATE_FILE, ClusterState, load, locked, save

#: How often the supervisor looks at its members.
WATCH_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Started:
    """What `start` did."""

    state: ClusterState
    #: The members' data directories were already there: the cluster resumed with its data.
    resumed: bool


def start(
    layout: Layout,
    *,
    fresh: bool = False,
    supervisor: tuple[int, str] | None = None,
    timeout: float = processes.READY_TIMEOUT_SECONDS,
) -> Started:
    """Start every member of ``layout`` and wait until all serve clients.

    Args:
        layout: the cluster to start.
        fresh: delete the data of a cluster that ran in the same directory before.
        supervisor: ``(pid, command line)`` of the process that will stay in the foreground
            and stop the members (`supervise`); None when the caller stops them itself
            (`kv.cluster.control.stop_cluster`).
        timeout: how long the members may take to serve.

    Raises:
        ClusterError: a cluster already runs there, another one's data is in the way, a
            port is in use, or a member did not come up (every member is stopped again).
    """
    root = layout.root
    if not (root / STATE_FILE).exists():
        check_ports_free(layout)  # before anything is created on disk
    root.mkdir(parents=True, exist_ok=True)
    with locked(root):
        old = load(root)
        if old is not None and control.is_running(old):
            pids = ", ".join(
                f"{member.name} pid {old.pids[member.name]}"
                for member in control.running_members(old)
            )
            raise ClusterError(
                f"a cluster is already running in {root}"
                + (f" ({pids})" if pids else "")
                + f": stop it with Ctrl-C in its terminal or `kv cluster stop --data-dir {root}`"
            )
        if fresh:
            _delete_members(layout, old)
        elif old is not None and (old.layout.size, old.layout.base_port) != (
            layout.size,
            layout.base_port,
        ):
            raise ClusterError(
                f"{root} holds a {old.layout.size}-member cluster on base port "
                f"{old.layout.base_port}: start it with those --size and --base-port to resume "
                "it, or add --fresh to delete its data"
            )
        elif old is None and (existing := [m for m in layout.members if m.data_dir.exists()]):
            raise ClusterError(
                f"{existing[0].data_dir} exists but {root} holds no cluster.json: choose another "
                "--data-dir, or add --fresh to delete it"
            )
        resumed = any(member.data_dir.exists() for member in layout.members)
        check_ports_free(layout)
        state = ClusterState(layout, dict.fromkeys(member.name for member in layout.members))
        if supervisor is not None:
            state.supervisor_pid, state.supervisor_command = supervisor
        waiting: list[tuple[LocalMember, int, int]] = []
        try:
            for member in layout.members:
                pid, offset = processes.spawn(layout, member)
                state.pids[member.name] = pid
                waiting.append((member, pid, offset))
            save(state)
            processes.wait_ready(waiting, timeout)
        except BaseException:  # a failed member, or Ctrl-C while waiting: stop every one
            control.stop_members(state, hurry=lambda: True)
            raise
    return Started(state, resumed)


def _delete_members(layout: Layout, old: ClusterState | None) -> None:
    """Delete the data directories and logs of the members of ``layout`` and ``old``."""
    members = list(layout.members) + (list(old.layout.members) if old is not None else [])
    for member in members:
        shutil.rmtree(member.data_dir, ignore_errors=True)
        member.log_file.unlink(missing_ok=True)


def supervise(
    layout: Layout,
    report: Callable[[str], None],
    stopping: Callable[[], bool],
) -> None:
    """Watch the members until ``stopping()``, reporting every change through ``report``."""
    root = layout.root
    seen: dict[str, int | None] = {}  # name -> pid seen running (None: seen down)
    partition: list[str] = []
    state = load(root)
    while state is not None and not stopping():
        for member in state.layout.members:
            pid = state.pids.get(member.name)
            now = pid if processes.is_running(member, pid) else None
            before = seen.get(member.name, now)
            if now is None and before is not None:
                code = processes.exit_code(before)
                why = "" if code is None else f": {processes.describe_exit(code)}"
                report(f"{member.name} is down (pid {before}{why})")
            elif now is not None and before != now:
                report(f"{member.name} is up (pid {now})")
            seen[member.name] = now
        if state.partition != partition:
            partition = state.partition
            report(f"partitioned: {faults.describe(layout, partition)}" if partition else "healed")
        time.sleep(WATCH_SECONDS)
        state = load(root)


def stop_all(layout: Layout, hurry: processes.Hurry) -> list[LocalMember]:
    """Stop every member the state file lists (the supervisor's Ctrl-C)."""
    with locked(layout.root):
        state = load(layout.root)
        if state is None:
            return []
        stopped = control.stop_members(state, hurry)
        state.supervisor_pid = state.supervisor_command = None
        save(state)
    processes.reap()
    return stopped
