"""The state file, ``<data-dir>/cluster.json``: what every ``kv cluster`` command reads.

``kv cluster start`` runs in one terminal and the control commands (``kill``, ``restart``,
``partition``, ...) in others, as separate processes. They share no memory, only this file:

* the layout (size, base port, timing flags, the flags passed to every member), from which
  every command computes the same names, ports and ids (`kv.cluster.layout`);
* the pid of each member's latest process, and the pid and command line of the foreground
  ``start`` process (the *supervisor*);
* the current partition: the members cut off from the rest, re-applied to a member that is
  restarted (its fault hook lives in memory and starts empty).

The file also lists each member's URLs, id, data directory and log, for people: it is
written, never read back (the layout recomputes them).

Writers replace the file atomically (write a temporary file, then rename it over the old
one), so a reader never sees half a file, and every read-modify-write holds an exclusive
``flock`` on ``cluster.lock``, so two commands cannot both restart the same member.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kv.cluster.layout import ClusterError, Layout

STATE_FILE = "cluster.json"
LOCK_FILE = "cluster.lock"
FORMAT_VERSION = 1
#: How long a command waits for another one to finish with the state file.
LOCK_TIMEOUT_SECONDS = 60.0


@dataclass(slots=True)
class ClusterState:
    """What the state file holds (see the module docstring)."""

    layout: Layout
    #: Member name -> pid of the process last started for it (None: never, or stopped).
    pids: dict[str, int | None] = field(default_factory=dict)
    supervisor_pid: int | None = None
    #: The supervisor's command line, to tell it apart from a later process with its pid.
    supervisor_command: str | None = None
    #: The members on the cut-off side of the current partition (empty: no partition).
    partition: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        layout = self.layout
        return {
            "version": FORMAT_VERSION,
            "size": layout.size,
            "base_port": layout.base_port,
            "heartbeat_interval": layout.heartbeat_interval,
            "election_timeout": layout.election_timeout,
            "pre_vote": layout.pre_vote,
            "member_flags": list(layout.member_flags),
            "supervisor_pid": self.supervisor_pid,
            "supervisor_command": self.supervisor_command,
            "partition": self.partition,
            "members": [
                {
                    "name": member.name,
                    "pid": self.pids.get(member.name),
                    "id": member.hex_id,
                    "client_url": member.client_url,
                    "peer_url": member.peer_url,
                    "metrics_url": member.metrics_url,
                    "data_dir": str(member.data_dir),
                    "log": str(member.log_file),
                }
                for member in layout.members
            ],
        }

    @classmethod
    def from_json(cls, root: Path, data: dict[str, Any]) -> ClusterState:
        layout = Layout(
            root=root,
            size=int(data["size"]),
            base_port=int(data["base_port"]),
            heartbeat_interval=data.get("heartbeat_interval"),
            election_timeout=data.get("election_timeout"),
            pre_vote=bool(data.get("pre_vote", False)),
            member_flags=tuple(data.get("member_flags", ())),
        )
        pids = {member["name"]: member.get("pid") for member in data["members"]}
        return cls(
            layout=layout,
            pids=pids,
            supervisor_pid=data.get("supervisor_pid"),
            supervisor_command=data.get("supervisor_command"),
            partition=list(data.get("partition", [])),
        )


def state_path(root: Path) -> Path:
    return root / STATE_FILE


def load(root: Path) -> ClusterState | None:
    """The state in ``root``, or None if no cluster was ever started there.

    Raises:
        ClusterError: the file exists but is not a state file kv can read.
    """
    path = state_path(root)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        return ClusterState.from_json(root.absolute(), data)
    except (ValueError, KeyError, TypeError) as error:
        raise ClusterError(f"{path} is not a kv cluster state file ({error})") from None


def require(root: Path) -> ClusterState:
    """The state in ``root``.

    Raises:
        ClusterError: no cluster was ever started there.
    """
    state = load(root)
    if state is None:
        raise ClusterError(
            f"no cluster in {root} (no {STATE_FILE}): start one with "
            f"`kv cluster start --data-dir {root}`"
        )
    return state


def save(state: ClusterState) -> None:
    """Write ``state`` atomically: a reader sees the old file or the new one."""
    path = state_path(state.layout.root)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(temporary, path)


@contextlib.contextmanager
def locked(root: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the cluster's lock (``flock`` on ``cluster.lock``) for a read-modify-write.

    Raises:
        ClusterError: another command held it for longer than ``timeout`` seconds.
    """
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"the cluster in {root} is busy: another kv cluster command has held "
                        f"its lock for {timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
