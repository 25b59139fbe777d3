"""etcd's Lock and Election gRPC services, kv beside the real etcd 3.4, on one member and on
three (chapter 9).

Each scenario calls the services (and the KV and Lease services they rest on) through gRPC
against the reference, then against the subject, in the same order, and the two transcripts
must be equal: every response as ``MessageToDict`` normalised as the rest of the suite does
(`tests.compat.normalise`: member and cluster IDs, raft term), every error as its gRPC code and
exact text. Lease IDs differ between two servers (the server picks them), so a transcript
numbers them as `tests.compat.sessions.Transcript` does: ``<lease-1>``, ``<lease-2>``, ... in
the order their keys first appear. Revisions are compared as they are: they prove the waiting
(a waiter's answer carries the revision of the release it waited for).

A scenario runs in three places (`tests.compat.places`): on one member all three are that
member; on three members they are a follower, the leader and the other follower, so
contenders meet through Raft.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from kv.api.v3electionpb import v3election_pb2 as election_pb
from kv.api.v3electionpb.v3election_pb2_grpc import ElectionStub
from kv.api.v3lockpb import v3lock_pb2 as lock_pb
from kv.api.v3lockpb.v3lock_pb2_grpc import LockStub
from kv.client import KVClient, prefix_end
from kv.server.errors import EtcdError
from tests.compat.normalise import normalise_value
from tests.compat.places import Places, on_one, on_three_members
from tests.compat.scenario import ScenarioMismatch, ServerPair, render, side_by_side
from tests.compat.servers import Server
from tests.compat.sessions import Transcript
from tests.recipes.lines import PATIENCE, wait_for_line

pytestmark = pytest.mark.etcd

#: A lease ID no server has granted.
UNKNOWN_LEASE = 0x5EED


@dataclass
class Member:
    """One place of a scenario: the Lock and Election stubs and a KV client for one member."""

    server: Server
    lock: LockStub
    election: ElectionStub
    client: KVClient


@contextlib.asynccontextmanager
async def connected(places: Places) -> AsyncIterator[tuple[Member, Member, Member]]:
    channels = [grpc.aio.insecure_channel(place.endpoint) for place in places]
    clients = [KVClient(place.endpoint) for place in places]
    try:
        yield tuple(  # type: ignore[misc]
            Member(place, LockStub(channel), ElectionStub(channel), client)
            for place, channel, client in zip(places, channels, clients, strict=True)
        )
    finally:
        for channel, client in zip(channels, clients, strict=True):
            await channel.close()
            await client.close()


class Run:
    """A scenario's transcript: each call's normalised answer or error, labelled."""

    def __init__(self, name: str) -> None:
        #: The lock or election the scenario uses: its own, so that scenarios sharing a cluster
        #: do not meet.
        self.name = name
        self.transcript = Transcript(name)
        self.leases: list[tuple[Member, int]] = []

    async def grant(self, member: Member, ttl: int = 60) -> int:
        """A lease for a contender, revoked when the scenario ends."""
        lease = (await member.client.lease_grant(ttl)).ID
        self.leases.append((member, lease))
        return lease

    async def revoke_leases(self) -> None:
        """Revoke what is left, so that no lease expires during a later scenario on the same
        cluster (its deletions would shift that scenario's revisions)."""
        for member, lease in self.leases:
            with contextlib.suppress(EtcdError):
                await member.client.lease_revoke(lease)

    async def call(self, label: str, member: Member, rpc: Awaitable[Any]) -> Any:
        """Record ``rpc``'s answer (returned) or error (None returned)."""
        try:
            response = await asyncio.wait_for(rpc, PATIENCE)
        except grpc.aio.AioRpcError as error:
            self.note(label, {"error": _error(error)})
            return None
        self.note(label, readable(response, member.server))
        return response

    def note(self, label: str, value: Any) -> None:
        self.transcript.note(label, value)

    async def line(self, label: str, member: Member, name: str) -> None:
        """Record the keys standing in line ``name/``."""
        prefix = f"{name}/".encode()
        response = await member.client.range(prefix, prefix_end(prefix))
        self.note(label, readable(response, member.server))


#: A call whose deadline passes while it waits. etcd answers it either way, by a race: its
#: handler sees the deadline too and returns UNKNOWN ``context deadline exceeded`` (a plain Go
#: error), and when the client's own deadline fires first the client reports DEADLINE_EXCEEDED.
DEADLINE_PASSED = "<deadline passed>"


def _error(error: grpc.aio.AioRpcError) -> Any:
    code, details = error.code(), error.details()
    if code is grpc.StatusCode.DEADLINE_EXCEEDED or details == "context deadline exceeded":
        return DEADLINE_PASSED
    return [code.name, details]


def readable(response: Message, server: Server) -> Any:
    """``response`` normalised, with its keys, values and names decoded."""
    as_dict = MessageToDict(response, preserving_proto_field_name=True)
    return _decoded(normalise_value(as_dict, server))


def _decoded(value: Any, key: str = "") -> Any:
    if isinstance(value, list):
        return [_decoded(item, key) for item in value]
    if isinstance(value, dict):
        return {k: _decoded(v, k) for k, v in value.items()}
    if key in {"key", "value", "name"} and isinstance(value, str):
        return base64.b64decode(value).decode()
    return value


def lock(member: Member, name: str, lease: int, timeout: float = PATIENCE) -> Any:
    return member.lock.Lock(lock_pb.LockRequest(name=name.encode(), lease=lease), timeout=timeout)


def campaign(member: Member, name: str, lease: int, value: str) -> Any:
    request = election_pb.CampaignRequest(name=name.encode(), lease=lease, value=value.encode())
    return member.election.Campaign(request)


def started(call: Awaitable[Any]) -> asyncio.Future[Any]:
    """A call left running while the scenario goes on (a Lock or Campaign that waits)."""
    return asyncio.ensure_future(call)


Scenario = Callable[[Run, tuple[Member, Member, Member]], Awaitable[None]]


async def transcript(scenario: Scenario, places: Places) -> list[tuple[str, Any]]:
    run = Run(scenario.__name__)
    async with connected(places) as members:
        try:
            await scenario(run, members)
        finally:
            await run.revoke_leases()
    return run.transcript.normalised()


async def same_on_both(scenario: Scenario, reference: Places, subject: Places) -> list[Any]:
    """Run ``scenario`` on the reference, then on the subject: the transcripts must be equal."""
    __tracebackhide__ = True
    ref, sub = await transcript(scenario, reference), await transcript(scenario, subject)
    if ref != sub:
        table = side_by_side(
            render(ref), render(sub), "reference etcd", f"subject {subject[0].kind}"
        )
        raise ScenarioMismatch(f"{scenario.__name__} differs:\n{table}")
    return [value for _, value in ref]


# -- scenarios: Lock ------------------------------------------------------------------------------


async def l_lock_and_unlock(run: Run, members: tuple[Member, Member, Member]) -> None:
    """Lock, lock again with the same lease, unlock, unlock the missing key, and the errors."""
    a, b, _ = members
    lease = await run.grant(a)
    held = await run.call("lock", a, lock(a, run.name, lease))
    await run.call("lock again with the same lease", b, lock(b, run.name, lease))
    await run.line("the line", b, run.name)
    await run.call("unlock", b, b.lock.Unlock(lock_pb.UnlockRequest(key=held.key)))
    await run.call("unlock a missing key", a, a.lock.Unlock(lock_pb.UnlockRequest(key=held.key)))
    await run.call("unlock no key", a, a.lock.Unlock(lock_pb.UnlockRequest()))
    await run.call("lock with an unknown lease", a, lock(a, run.name, UNKNOWN_LEASE))


async def l_waits_for_unlock(run: Run, members: tuple[Member, Member, Member]) -> None:
    """B's Lock blocks while A holds L, and answers at the revision of A's Unlock."""
    a, b, _ = members
    held = await run.call("A locks", a, lock(a, run.name, await run.grant(a)))
    waiting = started(lock(b, run.name, await run.grant(b)))
    await wait_for_line(a.client, run.name, 2)
    run.note("B waits while A holds L", not waiting.done())
    await run.call("A unlocks", a, a.lock.Unlock(lock_pb.UnlockRequest(key=held.key)))
    await run.call("B holds L", b, waiting)


async def l_holder_lease_revoked(run: Run, members: tuple[Member, Member, Member]) -> None:
    """A's lease is revoked while B waits: A's key goes with it, and B holds L."""
    a, b, c = members
    lease_a = await run.grant(a)
    await run.call("A locks", a, lock(a, run.name, lease_a))
    waiting = started(lock(b, run.name, await run.grant(b)))
    await wait_for_line(a.client, run.name, 2)
    await run.call("A's lease revoked", c, c.client.lease_revoke(lease_a))
    await run.call("B holds L", b, waiting)
    await run.line("only B in line", c, run.name)


async def l_without_a_lease(run: Run, members: tuple[Member, Member, Member]) -> None:
    """Lock with lease 0: the server grants a 60 s lease that nobody keeps alive."""
    a, b, _ = members
    held = await run.call("lock without a lease", a, lock(a, run.name, 0))
    key = await b.client.get(held.key)
    granted = await b.client.lease_time_to_live(key.lease)
    run.note("the server's lease", {"lease": str(key.lease), "granted_ttl": granted.grantedTTL})
    await b.client.lease_revoke(key.lease)


async def l_waiter_gives_up(run: Run, members: tuple[Member, Member, Member]) -> None:
    """B's Lock passes its deadline while A holds L: B's key is taken out of the line."""
    a, b, c = members
    await run.call("A locks", a, lock(a, run.name, await run.grant(a)))
    await run.call("B gives up", b, lock(b, run.name, await run.grant(b), timeout=1.0))
    await wait_for_line(c.client, run.name, 1)
    await run.line("only A in line", c, run.name)


# -- scenarios: Election --------------------------------------------------------------------------


async def e_campaign_proclaim_resign(run: Run, members: tuple[Member, Member, Member]) -> None:
    """Every unary Election RPC, and each of its errors, on one election."""
    a, b, c = members
    leader_of_e = _named(run)
    await run.call("leader of nobody", c, c.election.Leader(leader_of_e))
    won = await run.call("campaign", a, campaign(a, run.name, await run.grant(a), "a1"))
    await run.call("leader", c, c.election.Leader(leader_of_e))
    await run.call("proclaim", b, b.election.Proclaim(_proclaim(won.leader, "a2")))
    await run.call("leader after proclaim", c, c.election.Leader(leader_of_e))
    stale = election_pb.LeaderKey()
    stale.CopyFrom(won.leader)
    stale.rev += 100
    await run.call("proclaim, not leader", b, b.election.Proclaim(_proclaim(stale, "x")))
    await run.call("proclaim, no leader key", b, b.election.Proclaim(election_pb.ProclaimRequest()))
    await run.call("resign, not leader", b, b.election.Resign(_resign(stale)))
    await run.call("resign, no leader key", b, b.election.Resign(election_pb.ResignRequest()))
    await run.call("resign", a, a.election.Resign(_resign(won.leader)))
    await run.call("leader after resign", c, c.election.Leader(leader_of_e))
    await run.call("resign again", a, a.election.Resign(_resign(won.leader)))
    await run.call("campaign, unknown lease", a, campaign(a, run.name, UNKNOWN_LEASE, "v"))


async def e_campaign_again(run: Run, members: tuple[Member, Member, Member]) -> None:
    """A second Campaign with the same lease finds its key and proclaims the new value."""
    a, b, c = members
    lease = await run.grant(a)
    await run.call("campaign", a, campaign(a, run.name, lease, "a1"))
    await run.call("campaign again, another value", b, campaign(b, run.name, lease, "a2"))
    await run.call("leader", c, c.election.Leader(_named(run)))


async def e_waits_for_resign(run: Run, members: tuple[Member, Member, Member]) -> None:
    """B's Campaign blocks while A leads, and answers once A resigns."""
    a, b, c = members
    won = await run.call("A campaigns", a, campaign(a, run.name, await run.grant(a), "a"))
    waiting = started(campaign(b, run.name, await run.grant(b), "b"))
    await wait_for_line(c.client, run.name, 2)
    run.note("B waits while A leads", not waiting.done())
    await run.call("A resigns", a, a.election.Resign(_resign(won.leader)))
    await run.call("B leads", b, waiting)
    await run.call("leader", c, c.election.Leader(_named(run)))


async def e_observe(run: Run, members: tuple[Member, Member, Member]) -> None:
    """Observe, opened before anyone leads, streams each leader and each proclaim in order."""
    a, b, c = members
    stream = c.election.Observe(_named(run))
    try:
        won = await run.call("A campaigns", a, campaign(a, run.name, await run.grant(a), "a1"))
        await run.call("observed", c, stream.read())
        await run.call("A proclaims", a, a.election.Proclaim(_proclaim(won.leader, "a2")))
        await run.call("observed", c, stream.read())
        waiting = started(campaign(b, run.name, await run.grant(b), "b1"))
        await wait_for_line(c.client, run.name, 2)
        await run.call("A resigns", a, a.election.Resign(_resign(won.leader)))
        await run.call("observed", c, stream.read())
        await run.call("B leads", b, waiting)
    finally:
        stream.cancel()


async def e_leader_lease_revoked(run: Run, members: tuple[Member, Member, Member]) -> None:
    """The leader's lease is revoked: the candidate in line leads, and Observe says so."""
    a, b, c = members
    lease_a = await run.grant(a)
    await run.call("A campaigns", a, campaign(a, run.name, lease_a, "a"))
    stream = c.election.Observe(_named(run))
    try:
        await run.call("observed", c, stream.read())
        waiting = started(campaign(b, run.name, await run.grant(b), "b"))
        await wait_for_line(c.client, run.name, 2)
        await run.call("A's lease revoked", c, c.client.lease_revoke(lease_a))
        await run.call("B leads", b, waiting)
        await run.call("observed", c, stream.read())
    finally:
        stream.cancel()


def _named(run: Run) -> election_pb.LeaderRequest:
    return election_pb.LeaderRequest(name=run.name.encode())


def _proclaim(leader: election_pb.LeaderKey, value: str) -> election_pb.ProclaimRequest:
    return election_pb.ProclaimRequest(leader=leader, value=value.encode())


def _resign(leader: election_pb.LeaderKey) -> election_pb.ResignRequest:
    return election_pb.ResignRequest(leader=leader)


SCENARIOS: list[Scenario] = [
    l_lock_and_unlock,
    l_waits_for_unlock,
    l_holder_lease_revoked,
    l_without_a_lease,
    l_waiter_gives_up,
    e_campaign_proclaim_resign,
    e_campaign_again,
    e_waits_for_resign,
    e_observe,
    e_leader_lease_revoked,
]


def _name(scenario: Scenario) -> str:
    return scenario.__name__


# -- one member -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=_name)
async def test_on_one_member(pair: ServerPair, scenario: Scenario) -> None:
    await same_on_both(scenario, *on_one(pair))


# -- three members --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Places, Places]]:
    """A 3-member etcd and a 3-member subject (`tests.compat.places.on_three_members`)."""
    with on_three_members(tmp_path_factory.mktemp("lock-election-clusters")) as places:
        yield places


@pytest.mark.parametrize("scenario", SCENARIOS, ids=_name)
async def test_on_three_members(clusters: tuple[Places, Places], scenario: Scenario) -> None:
    await same_on_both(scenario, *clusters)
