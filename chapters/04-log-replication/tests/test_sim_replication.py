"""Log replication on the simulated cluster (Raft §5.3-5.4): the classic scenarios.

Agreement with everyone up, with a follower down, none without a quorum, concurrent
proposals, an old leader whose uncommitted tail is overwritten when it rejoins, and bounded
message counts. The clients are the simulator's (`kv.sim.clients.client`): a put is proposed by the
member the client talks to (a follower forwards it to the leader) and answered once that
member has applied it. Failure messages carry ``cluster.describe()``: seed and scenario.
"""

from __future__ import annotations

import pytest

from kv.raft import EntryType, MessageType
from kv.sim import Client, ClientOp, Cluster, OpState
from kv.sim.node import decode_request

ELECTION_MS = 1_000
HEARTBEATS = (MessageType.HEARTBEAT, MessageType.HEARTBEAT_RESP)


def put(cluster: Cluster, client: Client, key: str, value: str) -> ClientOp:
    return cluster.complete(client.put(key, value))


def everyone_has(cluster: Cluster, key: str, value: str, members: list[int] | None = None) -> bool:
    return all(cluster.nodes[i].get(key) == value for i in members or cluster.ids)


def put_values(cluster: Cluster, node: int) -> list[str]:
    """The values of the puts in a member's log, in log order."""
    values = []
    for entry in cluster.nodes[node].log:
        if entry.type is EntryType.NORMAL and entry.data:
            request = decode_request(entry.data)
            if request.HasField("put"):
                values.append(request.put.value.decode())
    return values


@pytest.mark.parametrize("seed", range(10))
def test_every_member_applies_each_acknowledged_put(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    cluster.elect_leader()
    client = cluster.client()
    for i in range(5):
        op = put(cluster, client, f"k{i}", f"v{i}")
        assert op.state is OpState.OK, f"{op} [{cluster.describe()}]"
        assert cluster.run_until(lambda c, i=i: everyone_has(c, f"k{i}", f"v{i}"), 1_000), (
            cluster.describe()
        )
    assert cluster.run_until(Cluster.converged, 2_000), cluster.describe()


@pytest.mark.parametrize("fault", ["crash", "isolate"])
@pytest.mark.parametrize("seed", range(8))
def test_puts_commit_while_a_follower_is_down_and_it_catches_up_when_back(
    seed: int, fault: str
) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    follower = next(i for i in cluster.ids if i != leader)
    cluster.crash(follower) if fault == "crash" else cluster.isolate(follower)
    client = cluster.client(leader)
    for i in range(5):
        op = put(cluster, client, f"k{i}", f"v{i}")
        assert op.state is OpState.OK, f"{op} [{cluster.describe()}]"
    cluster.restart(follower) if fault == "crash" else cluster.heal()
    caught_up = cluster.run_until(lambda c: everyone_has(c, "k4", "v4"), 3 * ELECTION_MS)
    assert caught_up, cluster.describe()
    assert all(cluster.nodes[follower].get(f"k{i}") == f"v{i}" for i in range(5))


@pytest.mark.parametrize("seed", range(8))
def test_nothing_commits_without_a_quorum_and_progress_resumes_with_one(seed: int) -> None:
    cluster = Cluster.create(5, seed=seed)
    leader = cluster.elect_leader()
    client = cluster.client(leader)
    assert put(cluster, client, "k", "before").state is OpState.OK, cluster.describe()
    commit = max(node.commit for node in cluster.nodes.values())
    followers = [i for i in cluster.ids if i != leader]
    for node in followers[:3]:
        cluster.crash(node)
    op = put(cluster, client, "k", "without-quorum")
    assert op.state is OpState.TIMED_OUT, f"{op} [{cluster.describe()}]"
    assert max(cluster.nodes[i].commit for i in cluster.up()) == commit, cluster.describe()
    assert all(cluster.nodes[i].get("k") == "before" for i in cluster.up())
    for node in followers[:3]:
        cluster.restart(node)
    cluster.elect_leader()
    assert put(cluster, cluster.client(), "k", "after").state is OpState.OK, cluster.describe()
    assert cluster.run_until(Cluster.converged, 5 * ELECTION_MS), cluster.describe()


@pytest.mark.parametrize("seed", range(8))
def test_concurrent_puts_all_commit_exactly_once_in_one_order(seed: int) -> None:
    cluster = Cluster.create(5, seed=seed)
    cluster.elect_leader()
    ops = [cluster.client().put(f"k{i}", f"v{i}") for i in range(10)]
    assert cluster.run_until(lambda c: all(op.done for op in ops), 2_000), cluster.describe()
    assert all(op.state is OpState.OK for op in ops), [str(op) for op in ops]
    assert cluster.run_until(Cluster.converged, 2_000), cluster.describe()
    values = put_values(cluster, 1)
    assert sorted(values) == sorted(f"v{i}" for i in range(10)), values
    assert all(put_values(cluster, i) == values for i in cluster.ids)


@pytest.mark.parametrize("seed", range(8))
def test_a_rejoining_old_leader_has_its_uncommitted_entries_overwritten(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    old = cluster.elect_leader()
    assert put(cluster, cluster.client(old), "k", "committed").state is OpState.OK
    cluster.isolate(old)
    # Two clients of the old leader: their puts reach its log, and no further.
    lost = [cluster.client(old).put("k", f"lost{i}") for i in range(2)]
    cluster.run_for(200)
    assert {"lost0", "lost1"} <= set(put_values(cluster, old)), cluster.describe()
    assert cluster.run_until(lambda c: c.leader() not in (None, old), 4 * ELECTION_MS)
    new = cluster.leader()
    assert new is not None, cluster.describe()
    assert put(cluster, cluster.client(new), "k", "kept").state is OpState.OK
    cluster.heal()
    assert cluster.run_until(Cluster.converged, 5 * ELECTION_MS), cluster.describe()
    for op in lost:
        assert cluster.complete(op).state is OpState.TIMED_OUT, f"{op} [{cluster.describe()}]"
    assert "lost0" not in put_values(cluster, old) and "lost1" not in put_values(cluster, old)
    assert everyone_has(cluster, "k", "kept"), cluster.describe()


@pytest.mark.parametrize("size", [3, 5])
def test_an_idle_cluster_sends_one_heartbeat_and_answer_per_follower_per_tick(size: int) -> None:
    cluster = Cluster.create(size, seed=size)
    cluster.elect_leader()
    cluster.run_for(ELECTION_MS)
    before = cluster.network.total_sent()
    before_heartbeats = cluster.network.total_sent(*HEARTBEATS)
    cluster.run_for(10_000)  # 100 ticks
    sent = cluster.network.total_sent() - before
    assert sent == cluster.network.total_sent(*HEARTBEATS) - before_heartbeats, "only heartbeats"
    assert sent <= 2 * (size - 1) * 101, f"{sent} messages in 10s [{cluster.describe()}]"


@pytest.mark.parametrize("at", ["leader", "follower"])
@pytest.mark.parametrize("size", [3, 5])
def test_a_put_costs_a_bounded_number_of_messages(size: int, at: str) -> None:
    """Per put: an append and its answer per follower, and an append carrying the new commit
    index with its answer -- 4(n-1) -- plus the forwarded proposal from a follower; heartbeats
    aside, allow one more exchange per follower for an append a heartbeat answer triggers."""
    cluster = Cluster.create(size, seed=size)
    leader = cluster.elect_leader()
    cluster.run_for(ELECTION_MS)
    endpoint = leader if at == "leader" else next(i for i in cluster.ids if i != leader)
    client = cluster.client(endpoint)
    puts = 10
    before = cluster.network.total_sent() - cluster.network.total_sent(*HEARTBEATS)
    for i in range(puts):
        assert put(cluster, client, "k", f"v{i}").state is OpState.OK, cluster.describe()
    assert cluster.run_until(lambda c: everyone_has(c, "k", f"v{puts - 1}"), 1_000)
    sent = cluster.network.total_sent() - cluster.network.total_sent(*HEARTBEATS) - before
    assert sent <= puts * (6 * (size - 1) + 1), f"{sent} messages for {puts} puts"
    assert cluster.leader() == leader, "no election: the count would include one"
