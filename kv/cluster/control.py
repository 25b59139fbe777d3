"""The control commands: kill, stop, restart and partition members of a running cluster.

Each command is its own short-lived process (another terminal than ``kv cluster start``),
so it acts on the members directly -- signals to their pids, calls to their fault hooks -- and
records what it changed in the state file, under the state file's lock (`kv.cluster.state`).
A member it restarts is its own process, in its own session: it outlives the command, and the
foreground ``kv cluster start`` stops it on Ctrl-C like the others because it stops whatever
pids the state file lists.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc

from kv.cluster import faults, processes
from kv.cluster.layout import ClusterError, LocalMember
from kv.cluster.state import ClusterState, locked, require, save
from kv.server.flag_values import parse_go_duration

#: How long ``kill`` waits for the killed process to be gone.
KILL_WAIT_SECONDS = 5.0


def supervisor_running(state: ClusterState) -> bool:
    """Is the foreground ``kv cluster start`` of this cluster still running?"""
    pid = state.supervisor_pid
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    return processes.process_command(pid) == state.supervisor_command


def running_members(state: ClusterState) -> list[LocalMember]:
    return [
        member
        for member in state.layout.members
        if processes.is_running(member, state.pids.get(member.name))
    ]


def is_running(state: ClusterState) -> bool:
    """A cluster runs while its foreground process or any of its members does."""
    return supervisor_running(state) or bool(running_members(state))


def require_running(root: Path) -> ClusterState:
    """The state of the cluster running in ``root``.

    Raises:
        ClusterError: no cluster was started there, or none of it runs any more.
    """
    state = require(root)
    if not is_running(state):
        raise ClusterError(
            f"no cluster running in {root}: start it with `kv cluster start --data-dir {root}`"
        )
    return state


def _running_pid(state: ClusterState, member: LocalMember) -> int:
    pid = state.pids.get(member.name)
    if pid is None or not processes.is_running(member, pid):
        raise ClusterError(
            f"{member.name} is not running: `kv cluster restart {member.name}` starts it"
        )
    return pid


def kill(root: Path, name: str) -> str:
    """SIGKILL member ``name``: a crash, with no chance to finish anything."""
    with locked(root):
        state = require_running(root)
        member = state.layout.member(name)
        pid = _running_pid(state, member)
        processes.send_signal(member, pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while processes.is_running(member, pid) and time.monotonic() < deadline:
            time.sleep(processes.POLL_SECONDS)
    return f"killed {name} (pid {pid}, SIGKILL)"


def stop(root: Path, name: str) -> str:
    """SIGTERM member ``name`` and wait for it to exit (SIGKILL after a grace period)."""
    with locked(root):
        state = require_running(root)
        member = state.layout.member(name)
        pid = _running_pid(state, member)
        processes.stop([(member, pid)])
    return f"stopped {name} (pid {pid}, SIGTERM)"


def restart(root: Path, name: str, timeout: float = processes.READY_TIMEOUT_SECONDS) -> str:
    """Start member ``name`` again with the same flags (stopping it first if it runs).

    The current partition is applied to it as soon as its peer port answers. A member on the
    side with a quorum is then waited for until it serves clients; one on the side without a
    quorum is not: it cannot rejoin the cluster before ``heal``.
    """
    with locked(root):
        state = require_running(root)
        layout = state.layout
        member = layout.member(name)
        old = state.pids.get(name)
        if processes.is_running(member, old):
            processes.stop([(member, old)])
        # The old process may have exited a moment ago, its sockets not yet closed.
        processes.wait_ports_free(member, processes.PORT_WAIT_SECONDS, hint=f"{name} cannot start")
        pid, offset = processes.spawn(layout, member)
        state.pids[name] = pid
        save(state)
        blocked = faults.plan(layout, state.partition)[name]
        if blocked:
            try:
                faults.set_faults(member, blocked, timeout=timeout, wait=True)
            except grpc.RpcError as error:
                raise ClusterError(
                    f"{name} (pid {pid}) did not take the partition: {error.code().name} "
                    f"(log: {member.log_file})"
                ) from None
        side = (
            state.partition
            if name in state.partition
            else [other.name for other in layout.members if other.name not in state.partition]
        )
        if len(side) <= layout.size // 2:
            return (
                f"restarted {name} (pid {pid}) on the side of the partition without a quorum "
                f"({faults.describe(layout, state.partition)}): it rejoins the cluster after "
                "`kv cluster heal`"
            )
        processes.wait_ready([(member, pid, offset)], timeout)
    return f"restarted {name} (pid {pid}): serving on {member.endpoint}"


def partition(root: Path, names: list[str]) -> list[str]:
    """Cut the members ``names`` off from the others (replacing any earlier partition)."""
    with locked(root):
        state = require_running(root)
        layout = state.layout
        blocks = faults.plan(layout, names)
        cut = [member.name for member in layout.members if member.name in names]
        notes = _apply(state, blocks)
        state.partition = cut
        save(state)
    return [f"partitioned: {faults.describe(layout, cut)}", *notes]


def heal(root: Path) -> list[str]:
    """Clear every running member's fault hook: every member hears every other again."""
    with locked(root):
        state = require_running(root)
        notes = _apply(state, faults.plan(state.layout, []))
        state.partition = []
        save(state)
    return ["healed: every member can reach every other", *notes]


def slow_disk(root: Path, name: str, delay: str) -> str:
    """Make member ``name``'s WAL fsyncs ``delay`` (a Go duration; ``0`` undoes it) slower."""
    try:
        delay_ns = parse_go_duration(delay)
    except ValueError as error:
        raise ClusterError(f"slow-disk: {error}") from None
    if delay_ns < 0:
        raise ClusterError(f"slow-disk: the delay cannot be negative: {delay}")
    with locked(root):
        state = require_running(root)
        member = state.layout.member(name)
        _running_pid(state, member)
        try:
            faults.set_disk_delay(member, delay_ns // 1_000_000)
        except grpc.RpcError as error:
            raise ClusterError(
                f"{name} did not answer its fault hook ({error.code().name})"
            ) from None
    if delay_ns == 0:
        return f"{name}: its disk is healthy again"
    return f"{name}: each fsync of its WAL now takes {delay} longer"


def _apply(state: ClusterState, blocks: dict[str, list[int]]) -> list[str]:
    """Set each running member's block list; notes on the members that could not be told."""
    notes = []
    for member in state.layout.members:
        if not processes.is_running(member, state.pids.get(member.name)):
            notes.append(
                f"note: {member.name} is down; the others' side of the cut holds for it, and "
                "`kv cluster restart` applies its own"
            )
            continue
        try:
            faults.set_faults(member, blocks[member.name])
        except grpc.RpcError as error:
            notes.append(f"note: {member.name} did not answer its fault hook ({error.code().name})")
    return notes


def stop_members(
    state: ClusterState, hurry: processes.Hurry = processes.never
) -> list[LocalMember]:
    """Stop every running member of ``state``, record them stopped; return those stopped."""
    targets = [(member, state.pids.get(member.name)) for member in state.layout.members]
    stopped = processes.stop(targets, hurry=hurry)
    state.pids = dict.fromkeys(state.pids)
    state.partition = []
    save(state)
    return stopped


def stop_cluster(root: Path, timeout: float = processes.STOP_GRACE_SECONDS + 5.0) -> str:
    """Stop the whole cluster: through its foreground process if it runs, else directly."""
    state = require_running(root)
    pid = state.supervisor_pid
    if pid is not None and pid != os.getpid() and supervisor_running(state):
        os.kill(pid, signal.SIGTERM)  # it stops the members and exits, as on Ctrl-C
        deadline = time.monotonic() + timeout
        while supervisor_running(state):
            if time.monotonic() > deadline:
                raise ClusterError(f"kv cluster start (pid {pid}) did not stop in {timeout:.0f} s")
            time.sleep(processes.POLL_SECONDS)
        return f"stopped the cluster in {root} (its kv cluster start, pid {pid}, exited)"
    with locked(root):
        stopped = stop_members(require(root))
    return f"stopped {' '.join(member.name for member in stopped) or 'nothing'} in {root}"
