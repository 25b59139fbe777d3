"""Linearizable reads on the simulated cluster: ReadIndex (thesis §6.4), as etcd serves them.

A member asked for a read gets a read index from the leader -- confirmed by a heartbeat
round, so that a leader cut off from the majority cannot confirm it -- waits until its state
machine has applied up to that index, and reads its own store. The two ways to get that
wrong are the classic ones (Jepsen found the first in etcd in 2014): a deposed leader
answering from its stale state, and a lagging follower answering before it caught up.
"""

from __future__ import annotations

import pytest

from kv.linearizability import GetResult, KeyValueModel, check
from kv.raft import MessageType, Role
from kv.sim import Cluster, OpState, SimConfig

ELECTION_MS = 1_000
PLAIN_RAFT = SimConfig(pre_vote=False, check_quorum=False)


@pytest.mark.parametrize("config", [PLAIN_RAFT, SimConfig()], ids=["plain-raft", "etcd"])
@pytest.mark.parametrize("seed", range(6))
def test_a_leader_cut_off_from_the_majority_serves_no_stale_reads(
    seed: int, config: SimConfig
) -> None:
    """Plain Raft keeps the cut-off leader leading for as long as the partition lasts (with
    CheckQuorum it steps down after an election timeout or two); either way, its reads must
    wait for a heartbeat round that never completes."""
    cluster = Cluster.create(3, seed=seed, config=config)
    old = cluster.elect_leader()
    reader = cluster.client(old)
    assert cluster.complete(reader.put("k", "old")).state is OpState.OK
    cluster.isolate(old)

    def new_leader(c: Cluster) -> bool:
        return any(n.role is Role.LEADER for i, n in c.nodes.items() if i != old)

    assert cluster.run_until(new_leader, 4 * ELECTION_MS), cluster.describe()
    new = next(i for i, n in cluster.nodes.items() if i != old and n.role is Role.LEADER)
    assert cluster.complete(cluster.client(new).put("k", "new")).state is OpState.OK
    cluster.run_for(1)
    read = cluster.complete(reader.get("k"))
    assert read.output != GetResult("old", 2), f"stale read {read} [{cluster.describe()}]"
    assert read.state is OpState.FAILED, f"{read}: no quorum, no answer [{cluster.describe()}]"
    assert check(KeyValueModel(), cluster.history).linearizable, cluster.describe()


@pytest.mark.parametrize("seed", range(10))
def test_a_follower_read_waits_until_it_applied_a_write_acknowledged_before(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    follower = next(i for i in cluster.ids if i != leader)
    writer, reader = cluster.client(leader), cluster.client(follower)
    assert cluster.complete(writer.put("k", "old")).state is OpState.OK
    assert cluster.run_until(lambda c: c.nodes[follower].get("k") == "old", ELECTION_MS)
    # The follower stops receiving appends (heartbeats still arrive): it falls behind.
    cluster.network.drop_if = lambda m: m.type is MessageType.APP and m.to == follower
    assert cluster.complete(writer.put("k", "new")).state is OpState.OK
    cluster.run_for(1)
    read = reader.get("k")
    cluster.run_for(300)
    assert not read.done, f"{read}: answered before applying the write [{cluster.describe()}]"
    cluster.network.drop_if = None
    cluster.complete(read)
    assert read.output == GetResult("new", 3), f"{read} [{cluster.describe()}]"
    assert check(KeyValueModel(check_revisions=True), cluster.history).linearizable
