"""Membership changes in the Raft core: one member at a time, and learners (thesis §4.1-4.2).

A change is proposed as a log entry and takes effect when applied (etcd's rule; the thesis
lets it take effect when appended -- both are safe for single-member changes, because any
majority of the old configuration overlaps any majority of the new one). A leader accepts a
new change only when the previous one is applied. Learners receive the log but neither vote
nor count for commitment, so a new member can catch up without weakening the quorum.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kv.api.raftpb import raft_pb2
from kv.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    EntryType,
    MemoryStorage,
    ProposalDroppedError,
    Role,
)
from kv.raft.tracker import ConfChangeError
from tests.raftnet import Network, drain, new_node

ADD = ConfChangeType.ADD_NODE
REMOVE = ConfChangeType.REMOVE_NODE
ADD_LEARNER = ConfChangeType.ADD_LEARNER_NODE


def change(kind: ConfChangeType, node: int) -> ConfChange:
    return ConfChange(type=kind, node_id=node)


def conf(net: Network, member: int) -> ConfState:
    return net[member].status().conf_state


def test_a_bootstrapped_cluster_writes_its_members_into_the_log() -> None:
    """etcd's StartNode: the first entries of the log are the members, committed at term 1."""
    node, storage = new_node(1, voters=[], storage=MemoryStorage())
    node.bootstrap([1, 2, 3])
    ready = node.ready()
    assert [(e.index, e.term, e.type) for e in ready.entries] == [
        (1, 1, EntryType.CONF_CHANGE),
        (2, 1, EntryType.CONF_CHANGE),
        (3, 1, EntryType.CONF_CHANGE),
    ]
    assert ready.committed_entries == ready.entries
    assert ready.hard_state is not None and ready.hard_state.term == 1
    assert ConfChange.unmarshal(ready.entries[2].data) == change(ADD, 3)
    assert node.status().conf_state == ConfState(voters=(1, 2, 3))
    storage.append(ready.entries)
    restarted, _ = new_node(1, storage=storage)
    with pytest.raises(ValueError, match="nonempty"):
        restarted.bootstrap([1, 2, 3])


def test_a_bootstrapped_cluster_elects_and_replicates() -> None:
    net = Network([1, 2, 3], bootstrap=True)
    net.elect(1)
    net.propose(1, b"x")
    assert all(net.applied(i) == [b"x"] for i in net.ids())
    assert all(conf(net, i) == ConfState(voters=(1, 2, 3)) for i in net.ids())


def test_a_new_voter_joins_learns_the_log_and_counts_for_the_majority() -> None:
    net = Network([1, 2, 3], bootstrap=True)
    net.elect(1)
    net.propose(1, b"before")
    net[1].propose_conf_change(change(ADD, 4))
    net.stabilize()
    assert conf(net, 1) == ConfState(voters=(1, 2, 3, 4))
    net.add_member(4)  # empty storage: it learns everything from the leader's log
    net.tick(1)
    assert conf(net, 4) == ConfState(voters=(1, 2, 3, 4))
    assert net.applied(4) == [b"before"]
    # Four voters: a majority is three. With two of them down nothing commits.
    net.crash(3)
    net.crash(4)
    net.propose(1, b"needs three")
    assert net.applied(1) == [b"before"]
    net.restart(4)
    net.tick(1)
    assert net.applied(1) == [b"before", b"needs three"]


def test_a_change_takes_effect_when_applied_not_when_appended() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(1)
    net[1].propose_conf_change(change(ADD, 4))
    net.stabilize()
    assert conf(net, 1) == ConfState(voters=(1, 2, 3)), "appended, not yet committed"
    net.heal()
    net.tick(1)
    assert conf(net, 1) == ConfState(voters=(1, 2, 3, 4))


def test_a_removed_voter_no_longer_counts() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net[1].propose_conf_change(change(REMOVE, 3))
    net.stabilize()
    assert conf(net, 1) == conf(net, 2) == ConfState(voters=(1, 2))
    net.crash(3)
    net.propose(1, b"two of two")
    assert net.applied(2) == [b"two of two"]


def test_a_removed_leader_steps_down_and_the_rest_elect_a_new_one() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net[1].propose_conf_change(change(REMOVE, 1))
    net.stabilize()
    assert net[1].role is Role.FOLLOWER
    net.crash(1)
    net.tick_all(40)
    assert net.leader() in (2, 3)
    net.propose(net.leader() or 0, b"without n1")
    assert net.applied(2)[-1] == b"without n1"


def test_only_one_change_may_be_pending_at_a_time() -> None:
    """Thesis §4.1: "the leader must wait for the previous change to be committed" (etcd:
    applied) before it accepts another. The second is replaced by an empty entry."""
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(1)
    net[1].propose_conf_change(change(ADD, 4))
    net[1].propose_conf_change(change(ADD, 5))
    net.heal()
    net.tick(1)
    assert conf(net, 1) == ConfState(voters=(1, 2, 3, 4))
    net[1].propose_conf_change(change(ADD, 5))
    net.stabilize()
    assert conf(net, 1) == ConfState(voters=(1, 2, 3, 4, 5))


def test_the_last_voter_cannot_be_removed() -> None:
    node, _ = new_node(1, voters=[1])
    with pytest.raises(ConfChangeError):
        node.apply_conf_change(change(REMOVE, 1))
    assert node.status().conf_state == ConfState(voters=(1,))


def test_a_learner_receives_the_log_but_does_not_count_for_commitment() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net[1].propose_conf_change(change(ADD_LEARNER, 4))
    net.stabilize()
    assert conf(net, 1) == ConfState(voters=(1, 2, 3), learners=(4,))
    net.add_member(4, knows=[1, 2, 3])
    net.tick(1)  # the first probe went nowhere; the next heartbeat finds the new member
    net.propose(1, b"x")
    assert net.applied(4) == [b"x"]
    assert conf(net, 4) == ConfState(voters=(1, 2, 3), learners=(4,))
    # The leader and the learner alone are not a majority of the three voters.
    net.crash(2)
    net.crash(3)
    net.propose(1, b"not committed")
    assert net.applied(1) == [b"x"]
    assert net[1].status().progress[4].match == net[1].status().last_index


def test_a_learner_never_campaigns_and_its_vote_is_not_needed() -> None:
    net = Network([1, 2, 3], learners=[4])
    net.elect(1)
    net.crash(1)
    net.tick(4, 100)
    assert net[4].role is Role.FOLLOWER
    net.tick_all(40)
    assert net.leader() in (2, 3)


def test_a_learner_is_promoted_to_voter_and_keeps_its_progress() -> None:
    net = Network([1, 2, 3], learners=[4])
    net.elect(1)
    net.propose(1, b"x")
    match_before = net[1].status().progress[4].match
    net[1].propose_conf_change(change(ADD, 4))
    net.stabilize()
    assert conf(net, 1) == conf(net, 4) == ConfState(voters=(1, 2, 3, 4))
    assert net[1].status().progress[4].match >= match_before > 0
    net.crash(1)
    net.tick_all(40)
    assert net.leader() in (2, 3, 4)


def test_a_proposal_at_a_removed_leader_is_dropped() -> None:
    node, storage = new_node(1, voters=[1, 2])
    node.campaign()
    drain(node, storage)
    node.apply_conf_change(change(REMOVE, 1))
    with pytest.raises(ProposalDroppedError):
        node.propose(b"x")


def test_a_learner_does_not_campaign() -> None:
    """Learners receive the log but do not vote and never stand for election (etcd)."""
    storage = MemoryStorage.with_members([1, 2, 3], learners=[4])
    node, storage = new_node(4, storage=storage)
    for _ in range(100):
        node.tick()
    assert node.role is Role.FOLLOWER
    assert node.term == 0


# -- a conf change in etcd's bytes ---------------------------------------------------------


conf_changes = st.builds(
    ConfChange,
    type=st.sampled_from(ConfChangeType),
    node_id=st.integers(0, 2**64 - 1),
    context=st.binary(max_size=40),
    id=st.integers(0, 2**64 - 1),
)


@given(conf_changes)
def test_a_conf_change_marshals_to_the_bytes_of_raftpb(change: ConfChange) -> None:
    expected = raft_pb2.ConfChange(
        type=int(change.type), node_id=change.node_id, context=change.context, id=change.id
    )
    assert change.marshal() == expected.SerializeToString(deterministic=True)
    assert ConfChange.unmarshal(expected.SerializeToString()) == change
