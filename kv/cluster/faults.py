"""Partitions and slow disks, through each member's fault hooks (``kvpeerpb.Peer/SetFaults``,
``SetDiskFaults``).

etcd has no switch that cuts a member off; kv's peer service has one for tests and for
learners (`kv.server.peers.transport`): a member told to block some member ids neither sends them
anything nor accepts what they send. A partition is a set of such blocks::

    kv cluster partition n1         n1 | n2 n3       (n1 alone; n2 and n3 keep a quorum)
    kv cluster partition n1 n2      n1 n2 | n3 n4 n5 (in a 5-member cluster)

The members named are cut off from all the others and keep talking among themselves; the
others keep talking among themselves too. Every cut pair is blocked at *both* ends, although
one end is enough: a member restarted later starts with an empty block list, and the cut must
hold anyway (its peers still block it). Each ``partition`` replaces the previous one, and
``heal`` clears every member's block list.

A slow disk (chapter 10) is one member's alone: ``kv cluster slow-disk n1 1500ms`` makes each
fsync of n1's WAL take 1.5 s longer, as a failing or overloaded disk would, until ``kv
cluster slow-disk n1 0``; a restarted member has a healthy disk again.
"""

from __future__ import annotations

import grpc

from kv.api.peerpb import peer_pb2, peer_pb2_grpc
from kv.cluster.layout import ClusterError, Layout, LocalMember

#: Seconds one fault-hook call may take (the peer service answers at once when it is up).
CALL_TIMEOUT_SECONDS = 2.0


def plan(layout: Layout, cut_off: list[str]) -> dict[str, list[int]]:
    """Member name -> the member ids it must block, for ``cut_off`` against the rest.

    An empty ``cut_off`` is no partition: every list is empty (that is ``heal``).

    Raises:
        ClusterError: an unknown name, or every member named (nobody left to cut off from).
    """
    side = {layout.member(name).name for name in cut_off}
    if side and len(side) == layout.size:
        raise ClusterError("name some members, not all of them: a partition needs two sides")
    blocks: dict[str, list[int]] = {}
    for member in layout.members:
        mine = member.name in side
        blocks[member.name] = [
            other.member_id
            for other in layout.members
            if side and other.name != member.name and (other.name in side) != mine
        ]
    return blocks


def set_faults(
    member: LocalMember,
    blocked: list[int],
    *,
    timeout: float = CALL_TIMEOUT_SECONDS,
    wait: bool = False,
) -> None:
    """Tell ``member`` which member ids to block (replacing its list).

    ``wait``: keep trying until the deadline while the peer port is not listening yet (a
    member that is starting).

    Raises:
        grpc.RpcError: the member did not answer.
    """
    with grpc.insecure_channel(member.peer_endpoint) as channel:
        stub = peer_pb2_grpc.PeerStub(channel)
        stub.SetFaults(peer_pb2.Faults(blocked=blocked), timeout=timeout, wait_for_ready=wait)


def get_faults(member: LocalMember, *, timeout: float = CALL_TIMEOUT_SECONDS) -> list[int] | None:
    """The member ids ``member`` blocks, or None if it did not answer."""
    try:
        with grpc.insecure_channel(member.peer_endpoint) as channel:
            stub = peer_pb2_grpc.PeerStub(channel)
            return list(stub.GetFaults(peer_pb2.GetFaultsRequest(), timeout=timeout).blocked)
    except grpc.RpcError:
        return None


def set_disk_delay(
    member: LocalMember, delay_ms: int, *, timeout: float = CALL_TIMEOUT_SECONDS
) -> None:
    """Make each fsync of ``member``'s WAL take ``delay_ms`` longer (0: a healthy disk again).

    Raises:
        grpc.RpcError: the member did not answer.
    """
    with grpc.insecure_channel(member.peer_endpoint) as channel:
        stub = peer_pb2_grpc.PeerStub(channel)
        stub.SetDiskFaults(peer_pb2.DiskFaults(fsync_delay_ms=delay_ms), timeout=timeout)


def describe(layout: Layout, cut_off: list[str]) -> str:
    """``n1 | n2 n3``: the two sides of a partition."""
    rest = [member.name for member in layout.members if member.name not in cut_off]
    return f"{' '.join(cut_off)} | {' '.join(rest)}"
