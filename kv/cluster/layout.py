"""Where the members of a local cluster live: names, ports, URLs, ids and command lines.

A layout is pure arithmetic on three numbers -- the size, the base port and the data
directory -- so every ``kv cluster`` command, in any terminal, computes the same members
from the state file (`kv.cluster.state`) without asking anyone. Member ``n<i>`` (counting
from 1) gets three consecutive ports, ten apart from the next member's, the third for its
metrics and health (chapter 10)::

    member   client URL (etcdctl)      peer URL (Raft)           metrics URL (/metrics, /health)
    n1       http://127.0.0.1:12379    http://127.0.0.1:12380    http://127.0.0.1:12381
    n2       http://127.0.0.1:12389    http://127.0.0.1:12390    http://127.0.0.1:12391
    n3       http://127.0.0.1:12399    http://127.0.0.1:12400    http://127.0.0.1:12401

The default base port is etcd's 2379 plus 10000: etcd's own ports, 2379 and 2380, are where a
reader's ``kv serve`` (the Quickstart's) or an etcd may already listen, and a cluster started
beside them must not collide with them. Member
ids are not random in etcd: they are derived from the peer URLs and the cluster token
(`kv.membership.member_id`), so the layout knows them before any member runs, exactly as
``etcdctl member list`` will show them.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from kv.membership import member_id

DEFAULT_SIZE = 3
#: Nine members is already more than any real etcd cluster should have (etcd recommends 3,
#: 5 or at most 7): a larger local cluster would only slow the machine down.
MAX_SIZE = 9
DEFAULT_BASE_PORT = 12379  # etcd's 2379 + 10000: beside a kv serve or an etcd on 2379/2380
DEFAULT_DATA_DIR = "kv-cluster"
#: Ports between one member and the next: n1 uses base to base+2, n2 base+10 to base+12.
PORT_STRIDE = 10
#: The member's ports after its client port: peer, then metrics (``--listen-metrics-urls``).
PEER_OFFSET, METRICS_OFFSET = 1, 2
#: The flags the layout sets itself, which ``kv cluster start -- FLAG...`` may not override.
LAYOUT_FLAGS = frozenset(
    {
        "--name",
        "--data-dir",
        "--listen-client-urls",
        "--advertise-client-urls",
        "--listen-peer-urls",
        "--initial-advertise-peer-urls",
        "--initial-cluster",
        "--initial-cluster-token",
        "--initial-cluster-state",
        "--listen-metrics-urls",
    }
)
HOST = "127.0.0.1"
#: ``--initial-cluster-token``: part of every member id (etcd: member.go ``NewMember``).
TOKEN = "kv-cluster"


class ClusterError(Exception):
    """Something ``kv cluster`` cannot do; the message is one line for the terminal."""


@dataclass(frozen=True, slots=True)
class LocalMember:
    """One member of the local cluster: its name, ports and files."""

    name: str
    client_port: int
    peer_port: int
    metrics_port: int
    data_dir: Path
    log_file: Path

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    @property
    def metrics_url(self) -> str:
        """Where the member serves ``/metrics`` and ``/health`` (chapter 10)."""
        return f"http://{HOST}:{self.metrics_port}"

    @property
    def ports(self) -> tuple[tuple[int, str], ...]:
        """Every port the member listens on, with what it is for."""
        return (
            (self.client_port, "client"),
            (self.peer_port, "peer"),
            (self.metrics_port, "metrics"),
        )

    @property
    def endpoint(self) -> str:
        """``host:port`` for etcdctl's ``--endpoints`` and gRPC clients."""
        return f"{HOST}:{self.client_port}"

    @property
    def peer_endpoint(self) -> str:
        return f"{HOST}:{self.peer_port}"

    @property
    def member_id(self) -> int:
        return member_id([self.peer_url], TOKEN)

    @property
    def hex_id(self) -> str:
        """The id as etcd prints it (``%x``: lower-case hex, no padding)."""
        return f"{self.member_id:x}"


@dataclass(frozen=True, slots=True)
class Layout:
    """A local cluster of ``size`` members under ``root``, on ports from ``base_port``."""

    root: Path
    size: int = DEFAULT_SIZE
    base_port: int = DEFAULT_BASE_PORT
    #: Passed to every member when set (``--heartbeat-interval``, ``--election-timeout``, ms).
    heartbeat_interval: int | None = None
    election_timeout: int | None = None
    #: ``--pre-vote`` for every member (Raft's PreVote, off by default in etcd 3.4 and kv).
    pre_vote: bool = False
    #: More ``kv serve`` flags for every member, ``--flag=value`` (``kv cluster start -- ...``).
    member_flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_SIZE:
            raise ClusterError(f"--size must be between 1 and {MAX_SIZE}, not {self.size}")
        last = self.base_port + PORT_STRIDE * (self.size - 1) + METRICS_OFFSET
        if self.base_port < 1 or last > 65535:
            raise ClusterError(
                f"--base-port {self.base_port} leaves no room for {self.size} members "
                f"(they use ports {self.base_port} to {last})"
            )
        object.__setattr__(self, "root", self.root.absolute())

    @property
    def members(self) -> tuple[LocalMember, ...]:
        return tuple(self._member(i) for i in range(self.size))

    def _member(self, index: int) -> LocalMember:
        name = f"n{index + 1}"
        client_port = self.base_port + PORT_STRIDE * index
        return LocalMember(
            name=name,
            client_port=client_port,
            peer_port=client_port + PEER_OFFSET,
            metrics_port=client_port + METRICS_OFFSET,
            data_dir=self.root / name,
            log_file=self.root / f"{name}.log",
        )

    def member(self, name: str) -> LocalMember:
        """The member called ``name``.

        Raises:
            ClusterError: no member has that name.
        """
        for member in self.members:
            if member.name == name:
                return member
        names = ", ".join(member.name for member in self.members)
        raise ClusterError(f"no member named {name!r} in this cluster (its members: {names})")

    def by_id(self, member_id: int) -> LocalMember | None:
        return next((member for member in self.members if member.member_id == member_id), None)

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{member.name}={member.peer_url}" for member in self.members)

    @property
    def endpoints(self) -> str:
        """Every client endpoint, comma-separated, as ``--endpoints`` wants them."""
        return ",".join(member.endpoint for member in self.members)

    def serve_flags(self, member: LocalMember) -> list[str]:
        """The ``kv serve`` flags for ``member``: etcd's own, as for a real etcd cluster.

        Always ``--initial-cluster-state new``: a member whose data directory already holds a
        log ignores the initial-cluster flags (etcd and kv alike), so the same command line
        both bootstraps a member and restarts it.
        """
        flags = [
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--listen-metrics-urls={member.metrics_url}",
            f"--initial-cluster={self.initial_cluster}",
            f"--initial-cluster-token={TOKEN}",
            "--initial-cluster-state=new",
        ]
        if self.heartbeat_interval is not None:
            flags.append(f"--heartbeat-interval={self.heartbeat_interval}")
        if self.election_timeout is not None:
            flags.append(f"--election-timeout={self.election_timeout}")
        if self.pre_vote:
            flags.append("--pre-vote")
        return [*flags, *self.member_flags]


def port_in_use(port: int) -> bool:
    """Is something listening on ``127.0.0.1:port``? (A bind attempt, as gRPC's.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # gRPC sets SO_REUSEADDR too: a port left in TIME_WAIT by a stopped member is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def check_ports_free(
    layout: Layout,
    members: tuple[LocalMember, ...] | None = None,
    *,
    hint: str = "choose another --base-port",
) -> None:
    """Refuse to start members whose ports something else already listens on.

    Raises:
        ClusterError: the first port in use, and whose it was meant to be.
    """
    for member in layout.members if members is None else members:
        for port, use in member.ports:
            if port_in_use(port):
                raise ClusterError(f"port {port} ({member.name}'s {use} port) is in use: {hint}")
