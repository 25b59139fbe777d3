"""A Ready's messages leave without those a later one makes redundant
(`kv.server.replica.outbox`): an empty append before a fuller one with the same anchor, an
acknowledgement before a further one.
"""

from __future__ import annotations

from collections.abc import Iterable

from kv.raft import Entry, Message, MessageType
from kv.server.replica.outbox import without_superseded
from tests.raftnet import Network

M = MessageType
TERM = 3


class FilteredNetwork(Network):
    """A network whose members send each batch of messages as the server's driver does."""

    def send(self, messages: Iterable[Message]) -> None:
        super().send(without_superseded(list(messages)))


def append(to: int, *, index: int = 10, entries: int = 0, commit: int = 9) -> Message:
    return Message(
        type=M.APP,
        to=to,
        from_=1,
        term=TERM,
        index=index,
        log_term=TERM,
        entries=tuple(Entry(term=TERM, index=index + 1 + i) for i in range(entries)),
        commit=commit,
    )


def answer(to: int, index: int, *, reject: bool = False, term: int = TERM) -> Message:
    return Message(type=M.APP_RESP, to=to, from_=2, term=term, index=index, reject=reject)


def test_an_empty_append_is_left_out_when_a_later_one_has_its_anchor_and_a_commit_as_high() -> None:
    commit_only = append(2, commit=8)
    writes = append(2, entries=3, commit=9)
    assert without_superseded([commit_only, writes]) == (writes,)


def test_appends_to_different_members_all_leave() -> None:
    messages = [append(2), append(3), append(2, entries=2), append(3, entries=2)]
    assert without_superseded(messages) == (messages[2], messages[3])


def test_an_empty_append_stays_when_the_later_one_commits_less() -> None:
    messages = [append(2, commit=9), append(2, entries=3, commit=8)]
    assert without_superseded(messages) == tuple(messages)


def test_an_empty_append_stays_when_the_later_one_has_another_anchor() -> None:
    messages = [append(2, index=10), append(2, index=12, entries=1)]
    assert without_superseded(messages) == tuple(messages)


def test_an_append_with_entries_always_leaves() -> None:
    messages = [append(2, entries=2), append(2, index=12, entries=2)]
    assert without_superseded(messages) == tuple(messages)


def test_an_acknowledgement_is_left_out_when_a_later_one_goes_further() -> None:
    messages = [answer(1, 10), answer(1, 13)]
    assert without_superseded(messages) == (messages[1],)


def test_a_rejection_always_leaves() -> None:
    messages = [answer(1, 10, reject=True), answer(1, 13)]
    assert without_superseded(messages) == tuple(messages)


def test_an_acknowledgement_of_an_older_term_stays() -> None:
    messages = [answer(1, 10, term=TERM - 1), answer(1, 13)]
    assert without_superseded(messages) == tuple(messages)


def test_other_messages_keep_their_order_around_what_is_left_out() -> None:
    heartbeat = Message(type=M.HEARTBEAT, to=2, from_=1, term=TERM, commit=9)
    messages = [append(2), heartbeat, append(2, entries=1)]
    assert without_superseded(messages) == (heartbeat, messages[2])


def test_followers_commit_and_apply_all_when_the_redundant_messages_are_left_out() -> None:
    net = FilteredNetwork()
    net.elect(1)
    leader = net[1]
    leader.propose(b"a")
    net.send(net.process_ready(1))
    while net.queue:  # the followers take the append and answer it
        net.deliver(net.queue.popleft())
        net.send(net.process_ready(2) + net.process_ready(3))
    # The answers moved the commit index: the leader told the followers with empty appends;
    # then a new write goes out in appends with the same anchor, in the same batch.
    leader.propose(b"b")
    batch = net.process_ready(1)
    assert next(m.entries for m in batch if m.type is M.APP and m.to == 2) == ()
    net.send(batch)
    assert [m.type for m in net.queue if m.to == 2] == [M.APP]
    net.stabilize()
    assert net.applied(2) == net.applied(3) == net.applied(1) == [b"a", b"b"]
