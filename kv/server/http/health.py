"""``/health``: is this member able to serve? Answered as etcd 3.4.23 answers it (chapter 10).

etcd's check (``etcdserver/api/etcdhttp/metrics.go``, ``checkHealth``) asks three things, in
order, and the first "no" answers ``{"health":"false"}`` with HTTP 503:

1. **an alarm** is raised (NOSPACE, CORRUPT) on any member. ``?exclude=NOSPACE`` (repeatable)
   leaves an alarm of that kind out. etcd returns at once here, *without* counting a failure
   in ``etcd_server_health_failures``; kv keeps that quirk, so the counters agree;
2. **no leader** is known to this member;
3. **a quorum read** fails within one second. etcd sends a v2 ``QGET`` through Raft; kv asks
   for a ReadIndex round (chapter 4), which needs a majority to confirm the leader just as
   well.

Otherwise ``{"health":"true"}`` with HTTP 200. Only GET is allowed (405 otherwise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from kv.api.etcdserverpb.rpc_pb2 import AlarmType
from kv.server.applied.alarms import alarm_text
from kv.server.errors import EtcdError
from kv.server.metrics.collector import HealthCounts
from kv.server.requests.server import Server

log = logging.getLogger(__name__)

#: How long the quorum read may take (etcd: ``context.WithTimeout(..., time.Second)``).
QUORUM_READ_SECONDS = 1.0


# --8<-- [start:check]
async def check_health(server: Server, counts: HealthCounts, exclude: Iterable[str] = ()) -> bool:
    """Is ``server`` healthy, as etcd's ``/health`` decides? Counts the answer in ``counts``."""
    excluded = set(exclude)
    for alarm in server.alarms.get():
        name = AlarmType.Name(alarm.alarm)
        if name in excluded:
            excluded.discard(name)
            continue
        log.warning("/health error due to %s", alarm_text(alarm))
        return False  # etcd returns before it counts
    if excluded:
        log.warning("fail exclude alarms from health check, exclude alarms %s", sorted(excluded))
    healthy = await _has_leader_and_quorum(server)
    if healthy:
        counts.success += 1
    else:
        counts.failures += 1
    return healthy


# --8<-- [end:check]


async def _has_leader_and_quorum(server: Server) -> bool:
    if not server.replica.leader:
        log.warning("/health error; no leader (status code 503)")
        return False
    try:
        await asyncio.wait_for(
            server.replica.proposals.linearizable_read(), timeout=QUORUM_READ_SECONDS
        )
    except (TimeoutError, EtcdError) as error:
        log.warning("/health error; quorum read failed %s (status code 503)", error or "timeout")
        return False
    return True
