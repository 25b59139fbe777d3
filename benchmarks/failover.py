"""The leader-kill test: how long a cluster takes to commit writes again after its leader dies.

One trial, on a running three-member cluster (`benchmarks.clusters`):

1. A client writes steadily: one *lane* per member, each a loop of Puts (one in flight) to
   that member's endpoint, so that whichever member can take writes first is being asked.
   A Put that fails (refused connection, "no leader", a timeout) is retried on the same
   member after `RETRY_PAUSE`; a Put gives up after ``attempt_timeout`` (a member that
   forwarded it to a dead leader would otherwise hold it for etcd's whole request timeout,
   7 s). So after the kill a write is being attempted on every surviving member at every
   moment, give or take ``attempt_timeout``: that is the measurement's resolution.
2. After ``steady`` seconds, the leader is killed with SIGKILL (a crash: nothing flushed,
   no goodbye to its peers). ``time.perf_counter()`` just before the signal is the start.
3. Meanwhile the surviving members are asked for their Status every `STATUS_POLL_SECONDS`.
   **New leader visible**: the first answer that names a leader other than the dead one.
   **First committed write**: the first Put *sent after the kill* that is acknowledged
   (a Put sent before it may be acknowledged after it without having waited for anything).
4. The trial ends when both happened (or after ``timeout`` seconds). The killed member is
   started again on its data directory with the same flags, and the next trial waits until
   it answers a linearizable Range and the cluster has settled, then kills the leader of the
   moment (usually another member).
"""

import asyncio
import contextlib
import math
import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import grpc

from benchmarks.clusters import Cluster, member_name
from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc

#: Seconds between two rounds of Status calls to the surviving members.
STATUS_POLL_SECONDS = 0.01
#: Seconds a lane waits after a failed Put before it tries again.
RETRY_PAUSE = 0.005
KEY_PREFIX = b"bench-failover/"


@dataclass(frozen=True, slots=True)
class KillTrial:
    """One leader kill."""

    killed: str
    """The member killed (it led)."""
    term_before: int
    new_leader: str
    """The member the first Status naming a new leader named ("" if none did in time)."""
    term_after: int
    """The term once the first write after the kill was committed (0: none was)."""
    leader_seconds: float
    """From the kill to the first Status (of a surviving member) that names a new leader."""
    first_write_seconds: float
    """From the kill to the acknowledgement of the first Put sent after it (NaN: none in time)."""
    first_write_member: str
    """The member that acknowledged it."""
    steady_writes_per_second: float
    """The lanes' acknowledged Puts per second before the kill."""
    failed_attempts: dict[str, int] = field(default_factory=dict)
    """Puts sent after the kill that failed before the first success, by status code."""
    failed_details: dict[str, int] = field(default_factory=dict)
    """The same but refused connections, by status code and the server's message."""
    restart_seconds: float = math.nan
    """The killed member started again: launch to its first answered Range."""


@dataclass(slots=True)
class _Trial:
    """What the lanes and the Status poller share while a trial runs."""

    killed_at: float = 0.0
    """``perf_counter`` just before the kill; 0 before it."""
    killed: int = -1
    killed_id: int = 0
    before: int = 0
    """Puts acknowledged before the kill."""
    first_write: float = 0.0
    first_write_member: int = -1
    leader_seen: float = 0.0
    new_leader_id: int = 0
    term_after: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    failed_details: Counter[str] = field(default_factory=Counter)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check_done(self) -> None:
        if self.first_write and self.leader_seen:
            self.done.set()


def run_trials(
    cluster: Cluster,
    trials: int,
    *,
    steady: float,
    attempt_timeout: float,
    value_size: int,
    timeout: float = 30.0,
    settle: float = 1.0,
    progress: Callable[[str], None] = lambda message: None,
) -> list[KillTrial]:
    """``trials`` leader kills on ``cluster``, each killed member restarted after its trial."""
    results = []
    for number in range(trials):
        leader = cluster.leader()
        trial = asyncio.run(_trial(cluster, leader, steady, attempt_timeout, value_size, timeout))
        cluster.members[leader].process.wait()
        restarted = cluster.restart(leader)
        trial = replace(trial, restart_seconds=restarted.startup_seconds)
        results.append(trial)
        progress(
            f"{cluster.kind} kill {number + 1}/{trials}: killed {trial.killed} (term "
            f"{trial.term_before}), new leader {trial.new_leader or '-'} (term "
            f"{trial.term_after}) visible after {trial.leader_seconds:.3f} s, first write "
            f"committed after {trial.first_write_seconds:.3f} s (on "
            f"{trial.first_write_member or '-'}), failed attempts "
            f"{dict(trial.failed_attempts) or 0}; restarted in {trial.restart_seconds:.2f} s"
        )
        _settle(cluster, settle)
    return results


def _settle(cluster: Cluster, seconds: float) -> None:
    """Give the restarted member ``seconds`` to reconnect, then wait for a leader."""
    time.sleep(seconds)
    cluster.leader()


async def _trial(
    cluster: Cluster,
    leader: int,
    steady: float,
    attempt_timeout: float,
    value_size: int,
    timeout: float,
) -> KillTrial:
    state = _Trial()
    value = os.urandom(value_size)
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(e, options=options) for e in cluster.endpoints]
    try:
        kv_stubs: list[rpc_pb2_grpc.KVAsyncStub] = [rpc_pb2_grpc.KVStub(c) for c in channels]
        maintenance: list[rpc_pb2_grpc.MaintenanceAsyncStub] = [
            rpc_pb2_grpc.MaintenanceStub(c) for c in channels
        ]
        term_before = (
            await maintenance[leader].Status(rpc_pb2.StatusRequest(), timeout=2.0)
        ).header.raft_term
        lanes = [
            asyncio.create_task(_lane(state, index, stub, value, attempt_timeout))
            for index, stub in enumerate(kv_stubs)
        ]
        poller = asyncio.create_task(_poll_status(state, maintenance))
        try:
            started = time.perf_counter()
            await asyncio.sleep(steady)
            state.killed, state.killed_id = leader, cluster.member_ids[leader]
            state.killed_at = time.perf_counter()
            os.kill(cluster.members[leader].pid, signal.SIGKILL)
            steady_rate = state.before / (state.killed_at - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.done.wait(), timeout)
            if state.first_write_member >= 0:
                # etcd's Status shows the term of the last entry applied, so the first answer
                # naming the new leader may still show the old term; once a write is
                # committed, the member that acknowledged it shows the new one.
                with contextlib.suppress(grpc.aio.AioRpcError):
                    answer = await maintenance[state.first_write_member].Status(
                        rpc_pb2.StatusRequest(), timeout=2.0
                    )
                    state.term_after = answer.raftTerm
        finally:
            for task in [*lanes, poller]:
                task.cancel()
            await asyncio.gather(*lanes, poller, return_exceptions=True)
    finally:
        for channel in channels:
            await channel.close()
    new_leader = (
        member_name(cluster.index_of(state.new_leader_id))
        if state.new_leader_id in cluster.member_ids
        else ""
    )
    return KillTrial(
        killed=member_name(leader),
        term_before=term_before,
        new_leader=new_leader,
        term_after=state.term_after,
        leader_seconds=_since(state.leader_seen, state.killed_at),
        first_write_seconds=_since(state.first_write, state.killed_at),
        first_write_member=(
            member_name(state.first_write_member) if state.first_write_member >= 0 else ""
        ),
        steady_writes_per_second=steady_rate,
        failed_attempts=dict(state.failed),
        failed_details=dict(state.failed_details),
    )


def _since(moment: float, start: float) -> float:
    return moment - start if moment else math.nan


async def _lane(
    state: _Trial,
    member: int,
    stub: "rpc_pb2_grpc.KVAsyncStub",
    value: bytes,
    attempt_timeout: float,
) -> None:
    """Puts to one member, back to back, one in flight, until cancelled."""
    request = rpc_pb2.PutRequest(key=KEY_PREFIX + member_name(member).encode(), value=value)
    clock = time.perf_counter
    while True:
        sent = clock()
        try:
            await stub.Put(request, timeout=attempt_timeout)
        except grpc.aio.AioRpcError as error:
            if state.killed_at and sent >= state.killed_at and not state.first_write:
                code = error.code().name
                state.failed[code] += 1
                if code != "UNAVAILABLE":  # a refused connection's text names the port
                    state.failed_details[f"{code}: {error.details()}"] += 1
            await asyncio.sleep(RETRY_PAUSE)
            continue
        if not state.killed_at:
            state.before += 1
        elif sent >= state.killed_at and not state.first_write:
            state.first_write, state.first_write_member = clock(), member
            state.check_done()


async def _poll_status(
    state: _Trial, maintenance: "list[rpc_pb2_grpc.MaintenanceAsyncStub]"
) -> None:
    """After the kill, ask the surviving members who leads until one names a new leader."""
    while True:
        await asyncio.sleep(STATUS_POLL_SECONDS)
        if not state.killed_at or state.leader_seen:
            continue
        survivors = [stub for index, stub in enumerate(maintenance) if index != state.killed]
        answers = await asyncio.gather(
            *(stub.Status(rpc_pb2.StatusRequest(), timeout=0.5) for stub in survivors),
            return_exceptions=True,
        )
        for answer in answers:
            if (
                isinstance(answer, rpc_pb2.StatusResponse)
                and answer.leader
                and answer.leader != state.killed_id
                and not state.leader_seen
            ):
                state.leader_seen = time.perf_counter()
                state.new_leader_id = answer.leader
                state.check_done()


@dataclass(frozen=True, slots=True)
class KillSummary:
    """The trials of one server, summarized."""

    server: str
    trials: int
    recovered: int
    """Trials in which a write was committed again within the timeout."""
    first_write_median: float
    first_write_max: float
    leader_median: float
    leader_max: float
    restart_median: float


def summarize(server: str, trials: list[KillTrial]) -> KillSummary:
    writes = [t.first_write_seconds for t in trials if not math.isnan(t.first_write_seconds)]
    leaders = [t.leader_seconds for t in trials if not math.isnan(t.leader_seconds)]
    restarts = [t.restart_seconds for t in trials if not math.isnan(t.restart_seconds)]

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else math.nan

    return KillSummary(
        server=server,
        trials=len(trials),
        recovered=len(writes),
        first_write_median=median(writes),
        first_write_max=max(writes, default=math.nan),
        leader_median=median(leaders),
        leader_max=max(leaders, default=math.nan),
        restart_median=median(restarts),
    )
