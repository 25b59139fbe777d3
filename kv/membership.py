"""Members and clusters: who is in the cluster and how their ids are derived (chapter 1).

etcd does not pick ids at random. A member's id is the first 8 bytes (big-endian) of the SHA-1
of its sorted peer URLs joined together and followed by the cluster token; the cluster's id is
the first 8 bytes of the SHA-1 of its members' ids, sorted, as 8-byte big-endian numbers
(etcd: ``etcdserver/api/membership/member.go`` and ``cluster.go``). Deriving them from the
configuration means every member computes the same ids without talking to the others, and a
token keeps two clusters started from the same URLs apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Member:
    """One member as ``etcdctl member list`` shows it."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False


# --8<-- [start:ids]
def member_id(peer_urls: list[str] | tuple[str, ...], token: str) -> int:
    """etcd's member id: SHA-1 over the sorted peer URLs and the cluster token."""
    digest = hashlib.sha1("".join(sorted(peer_urls)).encode() + token.encode()).digest()
    return int.from_bytes(digest[:8], "big")


def cluster_id(member_ids: list[int]) -> int:
    """etcd's cluster id: SHA-1 over the sorted member ids, 8 bytes big-endian each."""
    packed = b"".join(member.to_bytes(8, "big") for member in sorted(member_ids))
    return int.from_bytes(hashlib.sha1(packed).digest()[:8], "big")


# --8<-- [end:ids]


class InitialClusterError(ValueError):
    """``--initial-cluster`` could not be understood."""


def parse_initial_cluster(text: str) -> dict[str, tuple[str, ...]]:
    """Parse ``name=url,name=url2,other=url3`` into name -> peer URLs (a name may repeat)."""
    members: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise InitialClusterError(f"invalid --initial-cluster entry {item!r} (want name=url)")
        members.setdefault(name, []).append(url)
    if not members:
        raise InitialClusterError("--initial-cluster is empty")
    return {name: tuple(urls) for name, urls in members.items()}


@dataclass(frozen=True, slots=True)
class Cluster:
    """The members a cluster starts with, and its derived id."""

    token: str
    members: tuple[Member, ...] = field(default_factory=tuple)

    @classmethod
    def from_initial_cluster(cls, initial_cluster: str, token: str) -> Cluster:
        peers = parse_initial_cluster(initial_cluster)
        members = tuple(
            Member(member_id(urls, token), name, urls) for name, urls in sorted(peers.items())
        )
        return cls(token, members)

    @property
    def id(self) -> int:
        return cluster_id([member.id for member in self.members])

    def member_named(self, name: str) -> Member:
        for member in self.members:
            if member.name == name:
                return member
        raise InitialClusterError(f"--initial-cluster has no member named {name!r}")
