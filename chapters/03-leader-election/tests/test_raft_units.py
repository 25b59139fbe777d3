"""The small parts of the Raft core that elections use, one at a time: vote tallies, the
configuration, the RawNode contract, and the event stream. (The committed index, progress and
ReadIndex's queue are chapter 4's: ``test_replication_units.py`` there.)"""

from __future__ import annotations

import pytest

from kv.raft import (
    Config,
    MessageType,
    StepLocalMessageError,
    StepPeerNotFoundError,
)
from kv.raft.events import BecameLeader, Committed, VoteGranted, VoteIgnored
from kv.raft.quorum import VoteResult, vote_result
from tests.raftnet import drain, message, new_node

M = MessageType


# -- majorities ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("voters", "votes", "expected"),
    [
        ([1], {1: True}, VoteResult.WON),
        ([1], {}, VoteResult.PENDING),
        ([1, 2, 3], {1: True, 2: True}, VoteResult.WON),
        ([1, 2, 3], {1: True, 2: False}, VoteResult.PENDING),
        ([1, 2, 3], {1: False, 2: False}, VoteResult.LOST),
        ([1, 2, 3, 4], {1: True, 2: True}, VoteResult.PENDING),
        ([1, 2, 3, 4], {1: True, 2: False, 3: False}, VoteResult.LOST),
        ([1, 2, 3], {1: True, 9: True}, VoteResult.PENDING),  # 9 is not a voter
    ],
)
def test_votes_are_tallied_among_voters(
    voters: list[int], votes: dict[int, bool], expected: VoteResult
) -> None:
    assert vote_result(voters, votes) is expected


# -- configuration and the RawNode contract -------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"id": 0}, "cannot use none as id"),
        ({"heartbeat_tick": 0}, "heartbeat tick must be greater than 0"),
        ({"election_tick": 1}, "election tick must be greater than heartbeat tick"),
        ({"max_inflight_msgs": 0}, "max inflight messages must be greater than 0"),
    ],
)
def test_config_refuses_what_etcd_refuses(fields: dict[str, object], error: str) -> None:
    config = Config(**{"id": 1, **fields})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=error):
        config.validate()


def test_local_messages_are_refused_from_the_network() -> None:
    node, _ = new_node(1)
    with pytest.raises(StepLocalMessageError):
        node.step(message(M.HUP, 2, 1))


def test_responses_from_strangers_are_refused() -> None:
    node, _ = new_node(1)
    with pytest.raises(StepPeerNotFoundError):
        node.step(message(M.APP_RESP, 9, 1, term=1))


def test_a_ready_must_be_advanced_before_the_next() -> None:
    node, _ = new_node(1)
    node.campaign()
    ready = node.ready()
    with pytest.raises(RuntimeError):
        node.ready()
    node.advance(ready)
    with pytest.raises(RuntimeError):
        node.advance(ready)


def test_soft_state_is_reported_only_when_it_changes() -> None:
    node, storage = new_node(1)
    node.campaign()
    first = node.ready()
    assert first.soft_state is not None and first.soft_state.role.value == "candidate"
    storage.set_hard_state(first.hard_state or storage.hard_state)
    node.advance(first)
    node.step(message(M.VOTE_RESP, 2, 1, term=1, reject=True))
    assert not node.has_ready()


def test_events_are_structured_and_read_as_sentences() -> None:
    node, storage = new_node(1, voters=[1])
    node.take_events()
    node.campaign()
    drain(node, storage)
    events = node.take_events()
    assert [type(event) for event in events[1:]] == [BecameLeader, Committed]
    assert [str(event) for event in events] == [
        "n1 became candidate at term 1",
        "n1 became leader at term 1",
        "n1 committed index 1",
    ]
    assert node.take_events() == []
    assert str(VoteGranted(3, 4, candidate=2, pre_vote=True)) == (
        "n3 granted pre-vote to n2 at term 4"
    )
    assert str(VoteIgnored(3, 4, candidate=2, request_term=5)).startswith(
        "n3 ignored vote request from n2 for term 5"
    )
