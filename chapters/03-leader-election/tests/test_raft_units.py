"""The small parts of the Raft core, one at a time: majorities, progress, ReadIndex queueing,
configuration, and the RawNode contract."""

from __future__ import annotations

import pytest

from kv.raft import (
    Config,
    Entry,
    Message,
    MessageType,
    ReadOnlyOption,
    StepLocalMessageError,
    StepPeerNotFoundError,
)
from kv.raft.events import BecameLeader, Committed, VoteGranted, VoteIgnored
from kv.raft.progress import Inflights, Progress, ProgressState
from kv.raft.quorum import UNBOUNDED, VoteResult, committed_index, vote_result
from kv.raft.read_only import ReadOnly
from tests.raftnet import drain, message, new_node

M = MessageType


# -- majorities ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({1: 5}, 5),
        ({1: 5, 2: 3, 3: 9}, 5),
        ({1: 5, 2: 3, 3: 9, 4: 1}, 3),
        ({1: 5, 2: 5, 3: 1, 4: 1, 5: 9}, 5),
        ({1: 2, 2: 1}, 1),
    ],
)
def test_the_committed_index_is_what_a_majority_holds(match: dict[int, int], expected: int) -> None:
    assert committed_index(match.keys(), match) == expected


def test_a_voter_without_progress_counts_as_zero_and_no_voters_bound_nothing() -> None:
    assert committed_index([1, 2, 3], {1: 7}) == 0
    assert committed_index([], {}) == UNBOUNDED


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


# -- progress ---------------------------------------------------------------------------------


def test_a_probing_follower_gets_one_append_at_a_time() -> None:
    progress = Progress(next_index=5, max_inflight=4)
    assert not progress.is_paused()
    progress.sent_entries(7)
    assert progress.is_paused()
    assert progress.maybe_update(7)
    progress.become_replicate()
    assert (progress.state, progress.next, progress.is_paused()) == (
        ProgressState.REPLICATE,
        8,
        False,
    )


def test_a_replicating_follower_is_sent_to_optimistically_up_to_the_inflight_limit() -> None:
    progress = Progress(next_index=1, max_inflight=2, match=0)
    progress.become_replicate()
    progress.sent_entries(3)
    progress.sent_entries(6)
    assert (progress.next, progress.is_paused()) == (7, True)
    progress.maybe_update(3)
    progress.inflights.free_le(3)
    assert not progress.is_paused()


def test_a_stale_rejection_does_not_move_next_backwards() -> None:
    progress = Progress(next_index=10, max_inflight=4, match=5)
    progress.become_replicate()
    assert not progress.maybe_decrease_to(rejected=4, match_hint=4), "at or below match: stale"
    assert progress.maybe_decrease_to(rejected=8, match_hint=6)
    assert progress.next == 6
    progress.become_probe()
    assert not progress.maybe_decrease_to(rejected=9, match_hint=2), "not the latest probe"
    assert progress.maybe_decrease_to(rejected=5, match_hint=2)
    assert progress.next == 6, "never below match + 1"


def test_after_a_snapshot_the_follower_is_probed_from_the_snapshot() -> None:
    progress = Progress(next_index=3, max_inflight=4, match=2)
    progress.become_snapshot(20)
    assert progress.is_paused()
    progress.become_probe()
    assert (progress.state, progress.next) == (ProgressState.PROBE, 21)


def test_inflights_free_everything_acknowledged() -> None:
    inflights = Inflights(3)
    for index in (2, 4, 6):
        inflights.add(index)
    assert inflights.full()
    with pytest.raises(AssertionError):
        inflights.add(8)
    inflights.free_le(4)
    assert len(inflights) == 1


# -- ReadIndex bookkeeping ------------------------------------------------------------------------


def read_request(context: bytes) -> Message:
    return Message(type=M.READ_INDEX, entries=(Entry(data=context),))


def test_read_only_releases_requests_in_order_up_to_the_acknowledged_one() -> None:
    read_only = ReadOnly(ReadOnlyOption.SAFE)
    for index, context in enumerate([b"a", b"b", b"c"], start=10):
        read_only.add_request(index, read_request(context))
    read_only.add_request(99, read_request(b"a"))  # a duplicate context is ignored
    assert read_only.last_pending_request_ctx() == b"c"
    assert read_only.receive_ack(2, b"b") == {2}
    released = read_only.advance(b"b")
    assert [(s.request.entries[0].data, s.index) for s in released] == [(b"a", 10), (b"b", 11)]
    assert read_only.advance(b"b") == []
    assert read_only.last_pending_request_ctx() == b"c"


# -- configuration and the RawNode contract -------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"id": 0}, "cannot use none as id"),
        ({"heartbeat_tick": 0}, "heartbeat tick must be greater than 0"),
        ({"election_tick": 1}, "election tick must be greater than heartbeat tick"),
        ({"max_inflight_msgs": 0}, "max inflight messages must be greater than 0"),
        (
            {"check_quorum": False, "read_only_option": ReadOnlyOption.LEASE_BASED},
            "CheckQuorum must be enabled",
        ),
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
