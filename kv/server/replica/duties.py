"""What a member does for its cluster besides replicating (chapter 5).

Three small duties, each a few proposals or a leadership transfer driven from outside the
Ready loop:

* **publish** -- when it starts, a member proposes its name and client URLs
  (``ClusterMemberAttrSetRequest``), and serves clients only once that entry is applied:
  by then it knows a leader and has caught up with the log up to its own entry (etcd:
  ``publish`` and ``ReadyNotify``);
* **settle the cluster version** -- a leader records the version the cluster runs once every
  voter has published itself (``ClusterVersionSetRequest``; etcd: ``monitorVersions``);
* **hand over leadership** -- a leader that is told to stop first makes the most up-to-date
  voter leader (Raft thesis §3.10), so that the cluster does not spend an election timeout
  noticing that it is gone (etcd does this on SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.api.membershippb.membership_pb2 import (
    Attributes,
    ClusterMemberAttrSetRequest,
    ClusterVersionSetRequest,
)
from kv.server.errors import EtcdError

if TYPE_CHECKING:  # the replica calls into this module: no import cycle at run time
    from kv.server.replica.replica import Replica

log = logging.getLogger(__name__)

#: The version a kv cluster reports running: etcd's API version kv implements.
CLUSTER_VERSION = "3.4.0"


def publish(replica: Replica, name: str, client_urls: tuple[str, ...]) -> asyncio.Task[None]:
    """Propose this member's name and client URLs, retrying until they are applied; the
    task returned finishes then."""
    request = InternalRaftRequest(
        cluster_member_attr_set=ClusterMemberAttrSetRequest(
            member_ID=replica.member_id,
            member_attributes=Attributes(name=name, client_urls=client_urls),
        )
    )
    task = asyncio.get_running_loop().create_task(_propose_until_applied(replica, request))
    replica.add_task(task)
    return task


async def _propose_until_applied(replica: Replica, request: InternalRaftRequest) -> None:
    # Every start publishes, even with the same attributes as last time (etcd does).
    attributes = request.cluster_member_attr_set.member_attributes
    while True:
        if not replica.leader:  # a proposal would wait for one anyway
            await asyncio.sleep(0.01)
            continue
        try:
            await replica.proposals.propose(request)
        except EtcdError as error:
            log.debug("publish not done yet: %s", error)
            await asyncio.sleep(replica.timing.tick_seconds)
            continue
        log.info(
            "published %s %s to the cluster", attributes.name, ",".join(attributes.client_urls)
        )
        return


def decide_cluster_version(replica: Replica) -> asyncio.Task[None] | None:
    """On a leader, once every voter has published itself and no version is recorded yet,
    propose the cluster version; the task, or None if there is nothing to do."""
    members = replica.members
    if members.cluster_version or not all(m.name for m in members.list() if not m.is_learner):
        return None
    request = InternalRaftRequest(cluster_version_set=ClusterVersionSetRequest(ver=CLUSTER_VERSION))
    task = asyncio.get_running_loop().create_task(_propose_version(replica, request))
    replica.add_task(task)
    return task


async def _propose_version(replica: Replica, request: InternalRaftRequest) -> None:
    try:
        await replica.proposals.propose(request)
        log.info("set the cluster version to %s", CLUSTER_VERSION)
    except EtcdError as error:
        log.debug("the cluster version is not decided yet: %s", error)


async def hand_over_leadership(replica: Replica) -> None:
    """Before a leader stops, hand leadership to the most up-to-date voter and wait (an
    election timeout at most) until it has it."""
    if not replica.is_leader or replica.failure is not None:
        return
    progress = replica.raw.status().progress
    voters = [
        (peer.match, member)
        for member, peer in progress.items()
        if member != replica.member_id and not peer.is_learner
    ]
    if not voters:
        return
    _, transferee = max(voters)
    log.info("handing leadership over to %x before stopping", transferee)
    replica.transfer_leader(transferee)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + replica.timing.election_ms / 1000
    while replica.leader != transferee and loop.time() < deadline:
        await asyncio.sleep(replica.timing.tick_seconds / 4)
