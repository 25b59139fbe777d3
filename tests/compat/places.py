"""Where a lock or election scenario's contenders run: on one member, all three places are
that member; on three members, they are a follower, the leader and the other follower, so
contenders on different members meet through Raft (chapters 7-9's lock and election tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.cluster.processes import ProcessCluster
from tests.compat.conftest import subject_kind
from tests.compat.scenario import ServerPair
from tests.compat.servers import Server, free_ports

#: The first contender's member, the second's, the observer's.
Places = tuple[Server, Server, Server]


def on_one(pair: ServerPair) -> tuple[Places, Places]:
    """The reference's places and the subject's, each one member thrice."""
    return (pair.reference,) * 3, (pair.subject,) * 3


@contextlib.contextmanager
def on_three_members(tmp_path: Path) -> Iterator[tuple[Places, Places]]:
    """A 3-member etcd and a 3-member subject, started, and their places; stopped after."""
    ports = free_ports(12)
    reference = ProcessCluster.create("etcd", tmp_path / "etcd", 3, ports=ports[:6])
    subject = ProcessCluster.create(subject_kind(), tmp_path / "subject", 3, ports=ports[6:])
    try:
        reference.start()
        subject.start()
        yield places_of(reference), places_of(subject)
    finally:
        reference.stop()
        subject.stop()


def places_of(cluster: ProcessCluster) -> Places:
    leader, _ = asyncio.run(cluster.agreed_leader())
    first, second = (member for member in cluster.members if member is not leader)
    return first, leader, second
