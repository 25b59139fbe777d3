"""Real clusters for tests: N ``kv serve`` (or etcd) processes on loopback, and ways to hurt them.

A `ProcessCluster` is a list of `tests.compat.servers.Server` members started with etcd's
cluster flags (names ``n1``..``nN``, one ``--initial-cluster`` for all), so the same test can
run against kv and against the real etcd. It can kill a member (SIGKILL: a crash), restart
it on its data directory, wipe that directory, and -- for kv only -- cut a member off from
the others through the peer transport's fault hook (``kvpeerpb.Peer/SetFaults``).

Nothing here sleeps for correctness: every wait polls a condition (`wait_for`) against a
deadline and fails with what it last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc

from kv.api.etcdserverpb import rpc_pb2
from kv.api.peerpb import peer_pb2, peer_pb2_grpc
from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.compat.servers import (
    Server,
    ServerKind,
    ServerOptions,
    free_ports,
    start_all,
)

T = TypeVar("T")

#: Fast timers keep failover tests short: 50 ms heartbeats, 500 ms election timeout.
FAST_TIMERS = ("--heartbeat-interval=50", "--election-timeout=500")
ELECTION_TIMEOUT_S = 0.5
STATUS_TIMEOUT = 1.0


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline."""


async def wait_for(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20.0) -> T:
    """Poll ``probe`` until it returns something other than None; return it."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = await probe()
        except (EtcdError, grpc.aio.AioRpcError, OSError) as error:
            last = error
        else:
            if value is not None:
                return value
        await asyncio.sleep(0.02)  # polling interval only
    raise WaitTimeout(f"{what}: not within {timeout}s (last error: {last})")


@dataclass(slots=True)
class ProcessCluster:
    """N members on loopback, each a `Server` with its own ports and data directory."""

    kind: ServerKind
    members: list[Server]
    down: set[str] = field(default_factory=set)

    @classmethod
    def create(
        cls,
        kind: ServerKind,
        workdir: Path,
        size: int = 3,
        extra_flags: tuple[str, ...] = (),
        ports: Sequence[int] | None = None,
    ) -> ProcessCluster:
        """``ports``: client and peer port of each member in turn (default: free ones). Two
        clusters that run at once should have theirs chosen together, so that neither is
        given a port that the other was just given."""
        if ports is None:
            ports = free_ports(2 * size)
        if len(ports) != 2 * size:
            raise ValueError(f"{size} members need {2 * size} ports, not {len(ports)}")
        members = [
            Server(
                kind,
                workdir / f"n{i + 1}",
                ServerOptions(extra_flags=(*FAST_TIMERS, *extra_flags)),
                client_port=ports[2 * i],
                peer_port=ports[2 * i + 1],
                name=f"n{i + 1}",
            )
            for i in range(size)
        ]
        initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
        for member in members:
            member.initial_cluster = initial_cluster
        return cls(kind, members)

    def start(self) -> None:
        start_all(self.members, timeout=30.0)

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def named(self, name: str) -> Server:
        return next(member for member in self.members if member.name == name)

    @property
    def up(self) -> list[Server]:
        return [member for member in self.members if member.name not in self.down]

    @property
    def endpoints(self) -> list[str]:
        return [member.endpoint for member in self.up]

    # -- crashes --------------------------------------------------------------------------

    def kill(self, member: Server) -> None:
        member.kill()
        self.down.add(member.name)

    def restart(self, member: Server) -> None:
        member.start(timeout=30.0)
        self.down.discard(member.name)

    def restart_all(self) -> None:
        """Start every member again at once (one alone cannot serve without a quorum)."""
        start_all(self.members, timeout=30.0)
        self.down.clear()

    # -- membership ---------------------------------------------------------------------------

    async def add_learner(self, name: str) -> tuple[Server, int]:
        """Add a member ``name`` as a learner (MemberAdd at the leader) and launch it; return
        it, once it has caught up with the leader, and its member ID. It joins `members`, so
        `stop` stops it.

        etcd's strict check refuses any MemberAdd as ``unhealthy cluster`` until every voter
        has been connected for 5 s, so the add is retried until then. The learner is launched,
        not started: `Server.wait_ready` sends a linearizable Range, which a learner refuses.
        """
        leader, _ = await self.agreed_leader()
        client_port, peer_port = free_ports(2)
        learner = Server(
            self.kind,
            leader.workdir.parent / name,
            leader.options,
            client_port=client_port,
            peer_port=peer_port,
            name=name,
            initial_cluster_state="existing",
        )
        learner.initial_cluster = f"{leader.initial_cluster},{name}={learner.peer_url}"
        async with KVClient(leader.endpoint, timeout=5.0) as client:

            async def add() -> rpc_pb2.MemberAddResponse | None:
                try:
                    return await client.member_add([learner.peer_url], learner=True)
                except EtcdError as error:
                    if error.message != "etcdserver: unhealthy cluster":
                        raise
                    return None

            added = await wait_for(add, f"{name} added as a learner", timeout=15.0)
        self.members.append(learner)
        learner.launch()
        await wait_for(lambda: self.status(learner), f"the learner {name} serves", timeout=30.0)
        # Until it has applied its own addition, a learner does not know it is one: etcd's
        # then serves what a learner refuses.
        await caught_up(learner, leader)
        return learner, added.member.ID

    # -- looking at it ----------------------------------------------------------------------

    async def status(self, member: Server) -> rpc_pb2.StatusResponse:
        async with KVClient(member.endpoint, timeout=STATUS_TIMEOUT) as client:
            return await client.status()

    async def member_ids(self) -> dict[str, int]:
        """Member name -> id, from the first member that answers."""
        for member in self.up:
            with contextlib.suppress(EtcdError):
                async with KVClient(member.endpoint, timeout=STATUS_TIMEOUT) as client:
                    listed = await client.member_list()
                return {m.name: m.ID for m in listed.members if m.name}
        raise WaitTimeout("no member answered MemberList")

    async def agreed_leader(
        self, among: list[Server] | None = None, timeout: float = 20.0
    ) -> tuple[Server, int]:
        """Wait until every member of ``among`` (default: all up) reports the same leader,
        and that leader is one of them; return it and the term."""
        group = among if among is not None else self.up

        async def probe() -> tuple[Server, int] | None:
            statuses = [await self.status(member) for member in group]
            leaders = {s.leader for s in statuses}
            terms = {s.raftTerm for s in statuses}
            if len(leaders) != 1 or len(terms) != 1 or 0 in leaders:
                return None
            (leader_id,) = leaders
            for member, s in zip(group, statuses, strict=True):
                if s.header.member_id == leader_id:
                    return member, s.raftTerm
            return None

        return await wait_for(probe, f"one leader agreed by {[m.name for m in group]}", timeout)

    # -- partitions (kv only) -----------------------------------------------------------------

    async def set_faults(self, member: Server, blocked: set[int]) -> None:
        async with grpc.aio.insecure_channel(member.peer_url.removeprefix("http://")) as channel:
            stub: peer_pb2_grpc.PeerAsyncStub = peer_pb2_grpc.PeerStub(channel)
            await stub.SetFaults(peer_pb2.Faults(blocked=sorted(blocked)), timeout=2.0)

    async def isolate(self, member: Server) -> None:
        """Cut ``member`` off from every other member, both ways."""
        ids = await self.member_ids()
        others = {ids[m.name] for m in self.members if m is not member}
        await self.set_faults(member, others)
        for other in self.up:
            if other is not member:
                await self.set_faults(other, {ids[member.name]})

    async def heal(self) -> None:
        for member in self.up:
            await self.set_faults(member, set())


async def caught_up(member: Server, source: Server) -> None:
    """Wait until ``member`` has applied every entry ``source`` had applied when asked: a
    write answered by ``source`` is then visible on ``member`` too (a follower applies an
    entry a moment after the leader answered it)."""
    if member is source:
        return
    async with KVClient(source.endpoint) as client:
        target = (await client.status()).raftAppliedIndex

    async def probe() -> int | None:
        async with KVClient(member.endpoint) as client:
            applied = (await client.status()).raftAppliedIndex
        return applied if applied >= target else None

    await wait_for(probe, f"{member.label} applies up to index {target} of {source.label}")
