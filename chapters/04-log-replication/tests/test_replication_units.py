"""The small parts of the Raft core that replication uses, one at a time: the committed index a
majority holds, a leader's progress and flow control per follower, ReadIndex's queue, and the
configuration those need."""

from __future__ import annotations

import pytest

from kv.raft import Config, Entry, Message, MessageType, ReadOnlyOption
from kv.raft.progress import Inflights, Progress, ProgressState
from kv.raft.quorum import UNBOUNDED, committed_index
from kv.raft.read_only import ReadOnly

M = MessageType


# -- the committed index ----------------------------------------------------------------------


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


def test_lease_based_reads_need_check_quorum() -> None:
    config = Config(id=1, check_quorum=False, read_only_option=ReadOnlyOption.LEASE_BASED)
    with pytest.raises(ValueError, match="CheckQuorum must be enabled"):
        config.validate()
