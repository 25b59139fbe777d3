"""The space quota's second check, made as each member applies an entry (chapters 2 and 4).

etcd checks the quota twice. `kv.server.requests.quota` refuses a request that does not fit
*before* it is proposed, on the member the client asked. Then every member checks again as it
applies the entry, against its own backend (etcd: ``quotaApplierV3`` in
``etcdserver/apply.go``). A put, a txn or a lease grant that does not fit there is applied all
the same -- every member must apply the same entries, or their stores would part -- but:

* the client waiting on this member is answered ``etcdserver: mvcc: database space exceeded``,
  though its write took a revision;
* the member raises NOSPACE through the log, unless some member has raised it already, and
  answers the client only once the alarm is applied (etcd: ``applyEntryNormal``).

The two checks disagree when the backend grew between them, or when the members' backends
differ in size: each member defragments on its own, so after ``etcdctl defrag`` on one
follower, a put it accepts may be over the quota of the others, who then raise the alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.server import errors
from kv.server.applied.state_machine import Result
from kv.server.errors import EtcdError

if TYPE_CHECKING:  # the replica calls into this module: no import cycle at run time
    from kv.server.replica.replica import Replica

log = logging.getLogger(__name__)

#: Whether an entry fits the quota of this member's backend as it is now (set by the layer that
#: owns the quota, `kv.server.requests.server.Server`; until then, everything fits).
FitsQuota = Callable[[InternalRaftRequest], bool]


def fits_always(request: InternalRaftRequest) -> bool:
    return True


# --8<-- [start:answer]
def answer(replica: Replica, request: InternalRaftRequest, result: Result, fitted: bool) -> None:
    """Hand the client waiting for ``request`` (if it waits here) what applying it gave:
    ``result``, or, for an entry applied although it did not fit, the space error once
    NOSPACE is raised."""
    request_id = request.header.ID
    if fitted or isinstance(result, EtcdError):
        replica.proposals.written(request_id, result)
        return
    if replica.machine.alarms.is_raised(rpc_pb2.AlarmType.NOSPACE):
        replica.proposals.written(request_id, errors.NO_SPACE)
        return
    log.warning("message exceeded backend quota; raising alarm")
    task = asyncio.get_running_loop().create_task(_raise_nospace_then_answer(replica, request_id))
    replica.add_task(task)


async def _raise_nospace_then_answer(replica: Replica, request_id: int) -> None:
    raise_nospace = rpc_pb2.AlarmRequest(
        action=rpc_pb2.AlarmRequest.ACTIVATE,
        memberID=replica.member_id,
        alarm=rpc_pb2.AlarmType.NOSPACE,
    )
    with contextlib.suppress(EtcdError):  # etcd too answers whether or not the alarm made it
        await replica.proposals.propose(InternalRaftRequest(alarm=raise_nospace))
    replica.proposals.written(request_id, errors.NO_SPACE)


# --8<-- [end:answer]
