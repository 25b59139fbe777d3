"""``kv cluster status``: what each member says about itself, in one table.

For every member: is its process running, and if it serves clients, what its
``Maintenance.Status`` answers (the leader it knows, its term, its last Raft index -- the
columns of ``etcdctl endpoint status``), and which peers its fault hook blocks. A member that
runs but does not answer is *not serving*: still starting, or restarted while cut off from a
quorum, so that it could not join the cluster yet (kv serves clients only once its member has
been published through the log, as etcd).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.cluster import faults, processes
from kv.cluster.layout import Layout, LocalMember
from kv.cluster.state import ClusterState

#: Seconds a member may take to answer Status before it counts as not serving.
STATUS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One member's row of ``kv cluster status``."""

    member: LocalMember
    pid: int | None
    running: bool
    #: It answered Maintenance.Status; the fields below come from that answer.
    serving: bool = False
    #: The member id it knows as leader (0: none).
    leader: int = 0
    term: int = 0
    raft_index: int = 0
    #: The member ids its fault hook blocks (None: it did not say).
    blocked: tuple[int, ...] | None = None

    @property
    def is_leader(self) -> bool:
        return self.serving and self.leader == self.member.member_id

    @property
    def state(self) -> str:
        if not self.running:
            return "down"
        if not self.serving:
            return "not serving"
        if self.leader == 0:
            return "no leader"  # a candidate, or a follower that has not heard from one
        return "leader" if self.is_leader else "follower"


def member_status(member: LocalMember, pid: int | None) -> MemberStatus:
    """Ask one member about itself."""
    if not processes.is_running(member, pid):
        return MemberStatus(member, pid, running=False)
    blocked = faults.get_faults(member)
    try:
        with grpc.insecure_channel(member.endpoint) as channel:
            stub = rpc_pb2_grpc.MaintenanceStub(channel)
            answer = stub.Status(rpc_pb2.StatusRequest(), timeout=STATUS_TIMEOUT_SECONDS)
    except grpc.RpcError:
        return MemberStatus(member, pid, running=True, blocked=_ids(blocked))
    return MemberStatus(
        member,
        pid,
        running=True,
        serving=True,
        leader=answer.leader,
        term=answer.raftTerm,
        raft_index=answer.raftIndex,
        blocked=_ids(blocked),
    )


def _ids(blocked: list[int] | None) -> tuple[int, ...] | None:
    return None if blocked is None else tuple(blocked)


def collect(state: ClusterState) -> list[MemberStatus]:
    """Every member's status, asked in parallel (a member that hangs costs one timeout)."""
    members = state.layout.members
    with ThreadPoolExecutor(max_workers=len(members)) as pool:
        return list(
            pool.map(lambda member: member_status(member, state.pids.get(member.name)), members)
        )


def format_table(layout: Layout, statuses: list[MemberStatus]) -> str:
    """The statuses as an aligned table, one member per row."""

    def name_of(member_id: int) -> str:
        member = layout.by_id(member_id)
        return member.name if member is not None else f"{member_id:x}"

    header = ("NAME", "STATE", "PID", "ID", "ENDPOINT", "LEADER", "TERM", "INDEX", "CUT OFF FROM")
    rows = [header]
    for status in statuses:
        serving = status.serving
        if status.blocked is None:
            cut = "?" if status.running else ""
        else:
            cut = ",".join(name_of(member) for member in status.blocked) or "-"
        rows.append(
            (
                status.member.name,
                status.state,
                str(status.pid) if status.running else "-",
                status.member.hex_id,
                status.member.endpoint,
                (name_of(status.leader) if status.leader else "none") if serving else "",
                str(status.term) if serving else "",
                str(status.raft_index) if serving else "",
                cut,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
