"""A real three-member kv cluster under failures (chapters 4 and 5).

Real ``kv serve`` processes on loopback, the real ``etcdctl``, the project's client. Each
test hurts the cluster while clients write and read, then checks what Raft promises:

* a leader killed with SIGKILL is replaced within about two election timeouts, writes go
  on, no acknowledged write is lost, and the recorded history is linearizable;
* a leader cut off from its peers (the peer transport's fault hook) commits nothing more,
  the majority elects another leader and serves, and after healing all members agree;
* a member whose data directory is lost comes back through member remove / add and catches
  up from the leader's snapshot.

Timers are etcd's ratio at half the scale (50 ms heartbeats, 500 ms election timeout) so
that elections are quick; every wait polls a condition against a deadline.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kv.api.etcdserverpb import rpc_pb2
from kv.client import KVClient
from kv.linearizability import Put
from kv.server.errors import EtcdError
from tests.cluster.processes import (
    ELECTION_TIMEOUT_S,
    ProcessCluster,
    wait_for,
)
from tests.cluster.workload import (
    FRESH_CONNECTION,
    KEYS,
    History,
    Worker,
    check_history,
    etcdctl_writer,
    final_reads,
)
from tests.compat.servers import Server, free_ports

pytestmark = pytest.mark.etcd

WORKERS = 4
#: How long clients run before and after the failure.
LOAD_SECONDS = 1.5


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    value = random.randrange(2**32)
    request.node.user_properties.append(("seed", value))
    print(f"workload seed {value}")
    return value


async def run_workload(
    cluster: ProcessCluster, history: History, seed: int
) -> tuple[asyncio.Event, list[asyncio.Task[object]], list[Worker]]:
    """Start workers spread over the members, and one etcdctl writer."""
    stop = asyncio.Event()
    rng = random.Random(seed)
    workers = [
        Worker(
            i,
            cluster.members[i % len(cluster.members)].endpoint,
            history,
            random.Random(rng.random()),
        )
        for i in range(WORKERS)
    ]
    tasks: list[asyncio.Task[object]] = [asyncio.create_task(w.run(stop)) for w in workers]
    endpoints = [member.endpoint for member in cluster.members]
    tasks.append(asyncio.create_task(etcdctl_writer(100, endpoints, history, stop)))
    return stop, tasks, workers


async def acknowledged_after(history: History, moment: float, count: int) -> None:
    """Wait until ``count`` puts acknowledged after ``moment``."""

    async def probe() -> bool | None:
        return True if sum(1 for *_, t in history.acknowledged if t > moment) >= count else None

    await wait_for(probe, f"{count} puts acknowledged after the failure", timeout=20.0)


async def term_passes(cluster: ProcessCluster, member: Server, term: int) -> int:
    """Wait until ``member`` reports a term above ``term``; return that term. Status shows
    the term of the last applied entry (as etcd's does), so a new leader shows its term once
    its first entry is applied, a moment after it is elected."""

    async def probe() -> int | None:
        reported = (await cluster.status(member)).raftTerm
        return reported if reported > term else None

    return await wait_for(probe, f"{member.name} past term {term}", timeout=10.0)


def assert_no_acknowledged_write_lost(history: History, seen: dict[str, str | None]) -> None:
    """Each key holds its last acknowledged put, or a put that may have come after it: one
    that did not return before that put was sent (a lost write would leave an older value).
    The linearizability check implies this; this says it in the words of the issue."""
    puts = [(op, op.input) for op in history.recorder.history() if isinstance(op.input, Put)]
    for key in KEYS:
        acknowledged = [(op, put) for op, put in puts if put.key == key and not op.pending]
        if not acknowledged:
            continue
        last, last_put = max(acknowledged, key=lambda pair: pair[0].end)
        possible = {put.value for op, put in puts if put.key == key and op.end > last.call_time}
        assert seen[key] in possible, (
            f"{key} holds {seen[key]!r}; the last acknowledged put wrote {last_put.value!r}"
        )


async def test_killing_the_leader_elects_another_and_loses_no_acknowledged_write(
    make_cluster: Callable[..., ProcessCluster], seed: int
) -> None:
    cluster = make_cluster()
    leader, term = await cluster.agreed_leader()
    history = History()
    stop, tasks, _ = await run_workload(cluster, history, seed)
    await asyncio.sleep(LOAD_SECONDS)  # load before the failure; nothing waits on it

    killed_at = time.monotonic()
    cluster.kill(leader)
    new_leader, _ = await cluster.agreed_leader()
    elected_after = time.monotonic() - killed_at
    await acknowledged_after(history, time.monotonic(), 20)
    stop.set()
    await asyncio.gather(*tasks)

    assert new_leader is not leader
    new_term = await term_passes(cluster, new_leader, term)
    # Raft §5.2: a follower times out after one to two election timeouts, so an election
    # round takes at most two (the votes and the first heartbeat add milliseconds, and the
    # machine is shared). A split vote costs a round more: each term is a round.
    rounds = new_term - term
    assert elected_after < rounds * 2 * ELECTION_TIMEOUT_S + 1.0, (
        f"elected after {elected_after:.2f}s in {rounds} round(s)"
    )
    seen = await final_reads(new_leader.endpoint, history, client_id=999)
    assert_no_acknowledged_write_lost(history, seen)
    check_history(history)
    assert len(history.acknowledged) > 50


async def test_a_leader_cut_off_from_its_peers_commits_nothing_and_the_majority_goes_on(
    make_cluster: Callable[..., ProcessCluster], seed: int
) -> None:
    cluster = make_cluster()
    leader, term = await cluster.agreed_leader()
    history = History()
    stop, tasks, _ = await run_workload(cluster, history, seed)
    await asyncio.sleep(LOAD_SECONDS)

    await cluster.isolate(leader)
    isolated_at = time.monotonic()
    majority = [member for member in cluster.members if member is not leader]
    new_leader, _ = await cluster.agreed_leader(among=majority)
    # The old leader takes no write: a put sent to it alone is never acknowledged.
    async with KVClient(
        leader.endpoint, timeout=2 * ELECTION_TIMEOUT_S, options=FRESH_CONNECTION
    ) as alone:
        with pytest.raises(EtcdError):
            await alone.put("failover/isolated", "must-not-commit")
    await acknowledged_after(history, isolated_at, 20)

    await cluster.heal()
    await cluster.agreed_leader()
    stop.set()
    await asyncio.gather(*tasks)

    assert new_leader is not leader
    await term_passes(cluster, new_leader, term)
    async with KVClient(new_leader.endpoint, timeout=5.0) as client:
        assert await client.get("failover/isolated") is None
    # After healing every member holds the same data: the old leader's stray entry is gone.
    hashes = set()
    for member in cluster.members:
        async with KVClient(member.endpoint, timeout=5.0) as client:
            await client.get("failover/k0")  # a linearizable read: caught up to the leader
            hashes.add((await client.hash_kv()).hash)
    assert len(hashes) == 1
    seen = await final_reads(new_leader.endpoint, history, client_id=999)
    assert_no_acknowledged_write_lost(history, seen)
    check_history(history)


async def test_a_member_with_a_lost_data_dir_rejoins_by_remove_add_and_catches_up_by_snapshot(
    make_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = make_cluster("--snapshot-count=20", "--experimental-snapshot-catchup-entries=5")
    leader, _ = await cluster.agreed_leader()
    victim = next(member for member in cluster.members if member is not leader)
    async with KVClient(leader.endpoint, timeout=5.0) as client:
        for i in range(60):  # three snapshots' worth: the log before them is compacted
            await client.put(f"before/{i:02d}", str(i))

    ids = await cluster.member_ids()
    cluster.kill(victim)
    shutil.rmtree(victim.data_dir)
    async with KVClient(leader.endpoint, timeout=5.0) as client:
        await client.member_remove(ids[victim.name])

        async def add() -> rpc_pb2.MemberAddResponse | None:
            # etcd's strict check refuses ("unhealthy cluster") until every voter has been
            # connected for 5 s: an operator tries again, and so does the test.
            try:
                return await client.member_add([victim.peer_url])
            except EtcdError as error:
                if error.message != "etcdserver: unhealthy cluster":
                    raise
                return None

        added = await wait_for(add, "member add accepted", timeout=15.0)
        for i in range(10):
            await client.put(f"after/{i:02d}", str(i))
    victim.initial_cluster_state = "existing"
    cluster.restart(victim)

    async with KVClient(victim.endpoint, timeout=5.0) as client:
        everything = await client.range("\0", "\0", serializable=True)
        assert len(everything.kvs) == 70
        status = await client.status()
    assert status.header.member_id == added.member.ID != ids[victim.name]
    log = victim.log_path.read_text()
    assert "applied the leader's snapshot" in log
    leader_log = leader.log_path.read_text()
    assert "sending a snapshot" in leader_log


@pytest.mark.slow
async def test_soak_repeated_leader_kills_and_partitions_lose_nothing(
    make_cluster: Callable[..., ProcessCluster], seed: int
) -> None:
    """Ten rounds under load: kill the leader or cut it off, let the rest elect and serve,
    bring the member back; the whole history must stay linearizable."""
    cluster = make_cluster()
    rng = random.Random(seed)
    history = History()
    stop, tasks, _ = await run_workload(cluster, history, seed)
    for _round in range(10):
        leader, _ = await cluster.agreed_leader()
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        failed_at = time.monotonic()
        if rng.random() < 0.5:
            cluster.kill(leader)
            await cluster.agreed_leader()
            await acknowledged_after(history, failed_at, 10)
            cluster.restart(leader)
        else:
            await cluster.isolate(leader)
            await cluster.agreed_leader(among=[m for m in cluster.members if m is not leader])
            await acknowledged_after(history, failed_at, 10)
            await cluster.heal()
    await cluster.agreed_leader()
    stop.set()
    await asyncio.gather(*tasks)
    leader, _ = await cluster.agreed_leader()
    seen = await final_reads(leader.endpoint, history, client_id=999)
    assert_no_acknowledged_write_lost(history, seen)
    check_history(history)


async def test_a_member_of_another_cluster_is_refused_and_disturbs_nothing(
    make_cluster: Callable[..., ProcessCluster], tmp_path: Path
) -> None:
    """A member started with ``new`` where it should have joined bootstraps a cluster of its
    own (another cluster id) and campaigns in it; our members refuse its messages, as etcd's
    refuse a mismatched X-Etcd-Cluster-ID, so our term and leader stay as they were."""
    cluster = make_cluster()
    leader, term = await cluster.agreed_leader()
    (client_port, peer_port) = free_ports(2)
    stranger = Server(
        "kv",
        tmp_path / "stranger",
        cluster.members[0].options,
        client_port=client_port,
        peer_port=peer_port,
        name="n4",
    )
    stranger.initial_cluster = ",".join(
        [cluster.members[0].initial_cluster, f"n4={stranger.peer_url}"]
    )
    stranger.launch()
    try:

        async def refused() -> bool | None:
            logs = "".join(m.log_path.read_text() for m in cluster.members)
            return True if "request cluster ID mismatch" in logs else None

        await wait_for(refused, "our members refuse the stranger's messages", timeout=20.0)
        # The stranger times out and campaigns again every election timeout or two.
        await asyncio.sleep(3 * ELECTION_TIMEOUT_S)
        assert await cluster.agreed_leader() == (leader, term)
    finally:
        stranger.stop()


async def test_a_started_member_that_lost_its_data_dir_may_not_bootstrap_again(
    make_cluster: Callable[..., ProcessCluster],
) -> None:
    """Its votes went with its data: starting it as new would let it vote twice in a term.
    It refuses with etcd's message and exit status 1, and names the way back."""
    cluster = make_cluster()
    leader, _ = await cluster.agreed_leader()
    victim = next(member for member in cluster.members if member is not leader)
    ids = await cluster.member_ids()
    cluster.kill(victim)
    shutil.rmtree(victim.data_dir)
    victim.launch()
    assert victim.process is not None
    assert victim.process.wait(timeout=20) == 1
    assert f"member {ids[victim.name]:x} has already been bootstrapped" in victim.log_tail()


async def test_a_learner_catches_up_serves_only_status_and_serializable_reads_until_promoted(
    make_cluster: Callable[..., ProcessCluster],
) -> None:
    """etcd 3.4: a learner answers Status and serializable Range, and every other call with
    UNAVAILABLE "etcdserver: rpc not supported for learner"; promoted, it serves them all."""
    cluster = make_cluster()
    leader, _ = await cluster.agreed_leader()
    async with KVClient(leader.endpoint, timeout=5.0) as client:
        await client.put("learned", "yes")
    learner, learner_id = await cluster.add_learner("n4")
    try:
        assert (await cluster.status(learner)).isLearner
        async with KVClient(learner.endpoint, timeout=5.0) as client:
            found = await client.range("learned", serializable=True)
            assert [kv.value for kv in found.kvs] == [b"yes"]
            for refused in (client.put("k", "v"), client.get("learned"), client.member_list()):
                with pytest.raises(EtcdError) as caught:
                    await refused
                assert caught.value.message == "etcdserver: rpc not supported for learner"
        async with KVClient(leader.endpoint, timeout=5.0) as client:
            await client.member_promote(learner_id)

        # MemberPromote answers once the leader applied the change; the learner applies it a
        # moment later (as in etcd), and only then serves everything.
        async def promoted() -> rpc_pb2.StatusResponse | None:
            async with KVClient(learner.endpoint, timeout=1.0) as client:
                status = await client.status()
                return None if status.isLearner else status

        await wait_for(promoted, "the learner applies its promotion", timeout=15.0)
        async with KVClient(learner.endpoint, timeout=5.0) as client:
            await client.put("k", "v")
    finally:
        learner.stop()
