"""Choose-the-next-event mode, the timers by hand, and the freeze on a safety violation."""

from __future__ import annotations

from kv.raft import MessageType, Role
from kv.raft import events as ev
from tui.session import Session, actions
from tui.session.views import Pending


def first_message(session: Session, kind: MessageType, frm: int, to: int) -> Pending:
    """Step until such a message is on the wire; return it."""
    for _ in range(1_000):
        for pending in session.pending():
            message = next(
                (t.message for t in session.cluster.control.pending() if t.id == pending.id), None
            )
            if message is not None and (message.type, message.from_, message.to) == (
                kind,
                frm,
                to,
            ):
                return pending
        assert session.step(), f"seed {session.seed}"
    raise AssertionError(f"no {kind} from n{frm} to n{to} [seed {session.seed}]")


def campaigning(seed: int = 7) -> Session:
    """n1 and n3 both campaign for term 1; PreVote and CheckQuorum off."""
    session = Session.new(nodes=3, seed=seed, pre_vote=False, check_quorum=False)
    session.run_for(10)
    session.act(actions.Timeout(1))
    session.act(actions.Timeout(3))
    return session


def test_pending_lists_messages_and_timers_with_their_ids() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    assert vote.is_message and (vote.frm, vote.to) == (3, 2)
    assert vote.summary.startswith("vote t1")
    assert any(p.kind == "timer" and "election timer" in p.summary for p in session.pending())


def test_drop_loses_the_message() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    session.act(actions.Drop(vote.id))
    assert vote.id not in [p.id for p in session.pending()]
    session.run_for(200)
    granted = [e for e in session.cluster.events if isinstance(e.event, ev.VoteGranted)]
    assert all(e.event.candidate != 3 for e in granted)


def test_deliver_runs_the_message_now_and_the_vote_is_granted_first() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    now = session.now
    session.act(actions.Deliver(vote.id))
    assert session.now == now
    last = session.cluster.events[-1].event
    assert isinstance(last, ev.VoteGranted) and (last.node, last.candidate) == (2, 3)


def test_delay_keeps_the_id_and_moves_the_arrival() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    session.act(actions.Delay(vote.id, 500))
    moved = next(p for p in session.pending() if p.id == vote.id)
    assert moved.time_ms == vote.time_ms + 500


def test_duplicate_delivers_twice() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    session.act(actions.Duplicate(vote.id))
    copies = [p for p in session.pending() if (p.summary, p.frm, p.to) == (vote.summary, 3, 2)]
    assert len(copies) == 2 and copies[0].time_ms == copies[1].time_ms


def test_next_event_actions_replay_from_a_rewind() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    session.act(actions.Deliver(vote.id))
    session.run_for(500)
    end, lines = session.position, [str(line) for line in session.narration()]
    session.seek(1)
    session.seek(end)
    assert [str(line) for line in session.narration()] == lines


def test_aligned_timers_make_the_followers_time_out_together() -> None:
    session = Session.new(nodes=3, seed=7)
    session.run_for(3_000)
    leader = session.cluster.leader()
    session.act(actions.Crash(leader or 0))
    session.act(actions.AlignTimers())
    at = session.now + session.cluster.config.election_timeout_ms
    session.run_for(1_500)
    starts = [e.time for e in session.cluster.events if isinstance(e.event, ev.BecamePreCandidate)]
    assert starts[-2:] == [at, at], "seed 7"


def test_spread_timers_give_one_follower_a_head_start() -> None:
    session = Session.new(nodes=5, seed=7)
    session.run_for(3_000)
    session.act(actions.Crash(session.cluster.leader() or 0))
    session.act(actions.SpreadTimers())
    start = session.now
    session.run_for(3_000)
    first = next(
        e
        for e in session.cluster.events
        if e.time > start and isinstance(e.event, ev.BecamePreCandidate)
    )
    assert first.time == start + session.cluster.config.election_timeout_ms
    leader = session.cluster.leader()
    assert leader == first.event.node, "the first to time out wins [seed 7]"


def test_amnesia_elects_two_leaders_in_one_term_and_the_session_freezes_there() -> None:
    session = campaigning()
    session.act(actions.Cut.of([1], [3]))  # n3 must not hear that n1 won
    vote = first_message(session, MessageType.VOTE, 3, 2)
    session.act(actions.Delay(vote.id, 5_000))
    while session.cluster.nodes[1].role is not Role.LEADER:
        assert session.step(), "seed 7"
    session.act(actions.Amnesia(2))  # n2 forgets it voted for n1 in term 1
    session.act(actions.Deliver(vote.id))  # ... and grants n3's vote for term 1
    session.run_for(1_000)
    frozen = session.frozen
    assert frozen is not None, "seed 7"
    assert "Election Safety: n1 and n3 both lead term 1" in frozen.message
    assert "vote_resp n2 -> n3" in frozen.cause
    assert str(session.narration()[-1]).endswith("n3 became leader at term 1")
    assert not session.step() and session.position == frozen.position
    broken = [p.property.value for p in session.safety() if not p.holds]
    assert broken == ["Election Safety"]
    session.back()
    assert session.frozen is None and all(p.holds for p in session.safety())
