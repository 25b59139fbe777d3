"""Elections on the simulated cluster (Raft §5.2; PreVote and CheckQuorum on, as etcd runs).

The classic scenarios, on a virtual clock with 100 ms ticks and a 1 s election timeout: a
first leader within a bound; a new one after the leader crashes; none without a quorum; a
leader cut off from the majority stepping down. Every failure message carries the seed and
scenario (``cluster.describe()``) to replay it.
"""

from __future__ import annotations

import pytest

from kv.raft import Role
from kv.raft import events as ev
from kv.sim import Cluster

ELECTION_MS = 1_000  # SimConfig's default: 10 ticks of 100 ms


def leaders_by_term(cluster: Cluster) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for timed in cluster.events:
        if isinstance(timed.event, ev.BecameLeader):
            found.setdefault(timed.event.term, []).append(timed.event.node)
    return found


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("seed", range(25))
def test_a_first_leader_is_elected_within_three_election_timeouts(size: int, seed: int) -> None:
    cluster = Cluster.create(size, seed=seed)
    elected = cluster.run_until(lambda c: c.leader() is not None, 3 * ELECTION_MS)
    assert elected, f"no leader after {cluster.now}ms [{cluster.describe()}]"


@pytest.mark.parametrize("seed", range(10))
def test_an_undisturbed_leader_keeps_its_term_and_every_member_follows_it(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    term = cluster.nodes[leader].term
    cluster.run_for(20 * ELECTION_MS)
    assert cluster.leader() == leader, cluster.describe()
    assert all(node.term == term for node in cluster.nodes.values()), cluster.describe()
    assert all(node.lead == leader for node in cluster.nodes.values()), cluster.describe()
    assert list(leaders_by_term(cluster)) == [term], cluster.describe()


@pytest.mark.parametrize("seed", range(15))
def test_a_new_leader_is_elected_after_the_leader_crashes(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    old = cluster.elect_leader()
    cluster.crash(old)
    new = cluster.elect_leader(limit_ms=4 * ELECTION_MS)
    assert new != old, cluster.describe()
    assert cluster.nodes[new].term > cluster.nodes[old].term, cluster.describe()


@pytest.mark.parametrize("seed", range(10))
def test_a_restarted_old_leader_rejoins_as_a_follower_without_disrupting(seed: int) -> None:
    cluster = Cluster.create(3, seed=seed)
    old = cluster.elect_leader()
    cluster.crash(old)
    new = cluster.elect_leader(limit_ms=4 * ELECTION_MS)
    term = cluster.nodes[new].term
    cluster.restart(old)
    cluster.run_for(5 * ELECTION_MS)
    assert cluster.leader() == new, cluster.describe()
    assert cluster.nodes[old].role is Role.FOLLOWER, cluster.describe()
    assert cluster.nodes[old].term == term, cluster.describe()


@pytest.mark.parametrize("seed", range(10))
def test_no_leader_is_elected_without_a_quorum(seed: int) -> None:
    cluster = Cluster.create(5, seed=seed)
    leader = cluster.elect_leader()
    followers = [i for i in cluster.ids if i != leader]
    for node in [leader, *followers[:2]]:
        cluster.crash(node)
    cluster.run_for(10 * ELECTION_MS)
    assert cluster.leader() is None, cluster.describe()
    # PreVote: the two survivors cannot win, so they do not even raise their terms.
    assert {cluster.nodes[i].term for i in followers[2:]} == {cluster.nodes[leader].term}


@pytest.mark.parametrize("seed", range(10))
def test_a_leader_cut_off_from_the_majority_steps_down_and_the_majority_elects_another(
    seed: int,
) -> None:
    cluster = Cluster.create(3, seed=seed)
    old = cluster.elect_leader()
    cluster.isolate(old)
    cluster.run_for(3 * ELECTION_MS)  # CheckQuorum: at most ~2 election timeouts
    assert cluster.nodes[old].role is not Role.LEADER, cluster.describe()
    new = cluster.leader()
    assert new is not None and new != old, cluster.describe()
    cluster.heal()
    cluster.run_for(3 * ELECTION_MS)
    assert cluster.leader() == new, cluster.describe()
    assert cluster.nodes[old].lead == new, cluster.describe()


@pytest.mark.parametrize("seed", range(10))
def test_a_leader_that_can_send_but_not_hear_is_replaced(seed: int) -> None:
    """A one-way partition: the leader's heartbeats arrive, the answers do not."""
    cluster = Cluster.create(3, seed=seed)
    old = cluster.elect_leader()
    others = [i for i in cluster.ids if i != old]
    cluster.cut(others, [old])
    assert cluster.run_until(
        lambda c: c.leader() not in (None, old) and c.nodes[old].role is not Role.LEADER,
        5 * ELECTION_MS,
    ), cluster.describe()


@pytest.mark.parametrize("seed", range(10))
def test_an_isolated_follower_does_not_disrupt_the_leader_when_it_returns(seed: int) -> None:
    """PreVote (thesis §9.6): the follower campaigns alone for a while without raising its
    term, so healing the partition deposes no one."""
    cluster = Cluster.create(3, seed=seed)
    leader = cluster.elect_leader()
    term = cluster.nodes[leader].term
    follower = next(i for i in cluster.ids if i != leader)
    cluster.isolate(follower)
    cluster.run_for(10 * ELECTION_MS)
    cluster.heal()
    cluster.run_for(3 * ELECTION_MS)
    assert cluster.leader() == leader, cluster.describe()
    assert all(node.term == term for node in cluster.nodes.values()), cluster.describe()


@pytest.mark.parametrize("seed", range(8))
def test_a_leadership_transfer_hands_over_to_the_chosen_member_without_losing_writes(
    seed: int,
) -> None:
    cluster = Cluster.create(3, seed=seed)
    old = cluster.elect_leader()
    target = next(i for i in cluster.ids if i != old)
    client = cluster.client(target)
    assert cluster.complete(client.put("k", "before")).state.value == "ok"
    cluster.transfer_leader(target)
    assert cluster.run_until(lambda c: c.leader() == target, ELECTION_MS), cluster.describe()
    assert cluster.complete(client.put("k", "after")).state.value == "ok"
    assert cluster.run_until(Cluster.converged, ELECTION_MS), cluster.describe()
    assert all(node.get("k") == "after" for node in cluster.nodes.values())
