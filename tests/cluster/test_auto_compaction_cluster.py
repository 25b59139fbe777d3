"""Auto-compaction on a real three-member kv cluster (chapter 10).

Only the leader runs the compactor, and it compacts through the log, so every member compacts
at the same revision; when the leader dies, the next one takes over the compacting with the
notes it took while it followed.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.cluster.processes import ProcessCluster, wait_for
from tests.compat.servers import Server

pytestmark = pytest.mark.etcd

COMPACTED = "etcdserver: mvcc: required revision has been compacted"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    started = ProcessCluster.create("kv", tmp_path, 3, ("--auto-compaction-retention=1s",))
    started.start()
    yield started
    started.stop()


async def compacted_to(member: Server, revision: int) -> bool | None:
    """True once ``member`` has compacted to ``revision``: reading it still works, and reading
    the revision before it is refused (served locally, so each member answers for itself)."""
    async with KVClient(member.endpoint, timeout=1.0) as client:
        await client.range("key", revision=revision, serializable=True)
        try:
            await client.range("key", revision=revision - 1, serializable=True)
        except EtcdError as error:
            assert error.message == COMPACTED
            return True
    return None


async def put_five(member: Server) -> int:
    async with KVClient(member.endpoint) as client:
        for n in range(5):
            response = await client.put("key", f"v{n}")
    return response.header.revision


async def test_every_member_compacts_at_the_revision_the_leader_chose(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    latest = await put_five(leader)
    for member in cluster.members:
        await wait_for(partial(compacted_to, member, latest), f"{member.name} compacted")


async def test_a_new_leader_goes_on_compacting(cluster: ProcessCluster) -> None:
    leader, _ = await cluster.agreed_leader()
    cluster.kill(leader)
    successor, _ = await cluster.agreed_leader()
    latest = await put_five(successor)
    for member in cluster.up:
        await wait_for(partial(compacted_to, member, latest), f"{member.name} compacted")
