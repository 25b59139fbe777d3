"""ON THE WIRE and NODES as drawn: a message travels its whole line whatever its delay, a
lost one is struck out where it died (`tui.traffic`), and a node's row fits at 100 columns."""

from __future__ import annotations

from kv.raft import MessageType
from tests.tui.pilot import SEED, SIZE, paused_app
from tests.tui.test_session_next_event import campaigning, first_message
from tui.app import SimApp
from tui.session import actions
from tui.traffic import LOST_SHOWN_S, Traffic
from tui.view import WireItem
from tui.widgets.nodes import NodesPanel
from tui.widgets.wire import WirePane


def test_a_message_first_seen_now_starts_at_the_sender() -> None:
    session = campaigning()
    traffic = Traffic()
    traffic.update(session.cluster, 0.0)
    vote = first_message(session, MessageType.VOTE, 3, 2)
    traffic.update(session.cluster, 0.1)
    item = next(i for i in traffic.items(session.now, 20) if i.label.startswith("vote"))
    assert item.progress == 0.0 and not item.lost, vote


def lost_after(act: type[actions.Drop] | type[actions.Deliver]) -> list[WireItem]:
    """The lost messages on the wire after ``act`` on a vote from n3 to n2 in flight."""
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    traffic = Traffic()
    traffic.update(session.cluster, 0.0)
    session.act(act(vote.id))
    traffic.update(session.cluster, 0.1)
    return [i for i in traffic.items(session.now, 20) if i.lost]


def test_a_message_dropped_by_hand_is_lost_where_it_was() -> None:
    lost = lost_after(actions.Drop)
    assert [(i.frm, i.to, i.label.split()[0]) for i in lost] == [(3, 2, "vote")]
    assert lost[0].progress < 1.0


def test_a_message_delivered_early_by_hand_is_not_lost() -> None:
    assert lost_after(actions.Deliver) == []


def test_a_message_to_a_crashed_node_is_lost_at_its_door_and_then_goes() -> None:
    session = campaigning()
    first_message(session, MessageType.VOTE, 3, 2)
    traffic = Traffic()
    traffic.update(session.cluster, 0.0)
    session.act(actions.Crash(2))
    while any(
        t.message is not None and t.message.to == 2 for t in session.cluster.control.pending()
    ):
        assert session.step(), f"seed {session.seed}"
    traffic.update(session.cluster, 0.1)
    lost = [i for i in traffic.items(session.now, 20) if i.lost]
    assert lost and all(i.to == 2 and i.progress == 1.0 for i in lost)
    traffic.update(session.cluster, 0.1 + LOST_SHOWN_S)
    assert not [i for i in traffic.items(session.now, 20) if i.lost], "shown for a moment"


async def test_a_dropped_message_is_drawn_struck_out_and_said_lost() -> None:
    session = campaigning()
    vote = first_message(session, MessageType.VOTE, 3, 2)
    app = SimApp(session, run=False, warm_up=False)
    async with app.run_test(size=SIZE):
        app.do(actions.Drop(vote.id))
        pane = app.query_one("#wire-wide", WirePane)
        text = pane.render()
        line = next(line for line in text.split() if "lost" in line.plain)
        assert line.plain.startswith("n3 ") and "✗" in line.plain and "n2 lost vote" in line.plain
        assert any("strike" in str(span.style) for span in line.spans)
        assert "1 lost" in str(pane.border_subtitle)


async def test_each_node_row_fits_the_nodes_panel_at_100_columns() -> None:
    app = paused_app()
    app.session.run_for(60_000)  # numbers of a few digits
    async with app.run_test(size=SIZE) as pilot:
        app.refresh_view()
        await pilot.pause()
        panel = app.query_one(NodesPanel)
        width = panel.content_size.width
        lines = panel.render().plain.splitlines()
        assert lines and max(len(line) for line in lines) <= width, (width, lines)
        assert all("app " in line for line in lines[::2]), f"seed {SEED}"
