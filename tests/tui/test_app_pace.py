"""The TUI's pace (`tui.speed`): slow while something is under way, fast-forwarded through
quiet stretches, and the status line saying which; ``F`` turns fast-forwarding off."""

from __future__ import annotations

import math

from kv.raft import MessageType
from kv.sim import NetworkConfig, SimConfig
from tests.tui.pilot import SEED, SIZE, paused_app
from tests.tui.test_session_next_event import campaigning, first_message
from tui.session import Session, actions
from tui.speed import (
    CHUNK_MS,
    FAST_FORWARD_MIN,
    TUI_NETWORK,
    Pacer,
    is_quiet,
    tui_config,
    watch_speed,
)
from tui.widgets.status import StatusLine


def test_the_default_speed_lets_an_average_message_cross_in_about_half_a_second() -> None:
    assert watch_speed(TUI_NETWORK) == 0.05  # 30 ms on average, x0.05: 0.6 s on screen
    assert watch_speed(NetworkConfig(delay_ms=(1, 10))) == 0.01  # kv.sim's default network


def test_the_tui_network_is_its_own_and_kv_sims_default_is_left_alone() -> None:
    assert tui_config().network == TUI_NETWORK
    assert SimConfig().network.delay_ms == (1, 10)


def test_a_cluster_with_only_heartbeats_and_timers_pending_is_quiet() -> None:
    session = Session.new(nodes=3, seed=SEED, config=tui_config())
    assert session.cluster.run_until(lambda c: c.leader() is not None, 10_000)
    session.run_for(1_000)  # the first entry is committed everywhere: only heartbeats now
    kinds = {t.message.type for t in session.cluster.control.pending() if t.message is not None}
    assert kinds <= {MessageType.HEARTBEAT, MessageType.HEARTBEAT_RESP}, kinds
    assert is_quiet(session.cluster), f"seed {SEED}"


def test_a_client_put_on_its_way_is_not_quiet_and_its_timeout_alone_is() -> None:
    session = Session.new(nodes=3, seed=SEED, config=tui_config())
    assert session.cluster.run_until(lambda c: c.leader() is not None, 10_000)
    session.run_for(1_000)
    session.act(actions.ClientPut("k", "v"))
    assert not is_quiet(session.cluster)
    session.run_for(500)  # answered; the request's timeout stays pending, a mere timer
    assert session.cluster.nodes[1].get("k") == "v", f"seed {SEED}"
    assert is_quiet(session.cluster), [str(t) for t in session.cluster.control.pending()]


def test_a_vote_on_the_wire_is_not_quiet() -> None:
    session = campaigning()
    first_message(session, MessageType.VOTE, 3, 2)
    assert not is_quiet(session.cluster)


def test_a_quiet_stretch_costs_less_wall_time_than_a_watched_one() -> None:
    pacer = Pacer(0.05)
    pacer.give(0.05)
    watched = pacer.allowance(quiet=False)
    assert watched == 2  # 50 ms of wall at x0.05
    assert pacer.allowance(quiet=True) == min(CHUNK_MS, int(0.05 * FAST_FORWARD_MIN * 1000))


def test_spent_virtual_time_is_paid_for_in_wall_time_at_the_speed_it_ran() -> None:
    pacer = Pacer(0.05)
    pacer.give(0.1)
    pacer.spend(CHUNK_MS, quiet=True)  # 10 ms at x2: 5 ms of wall
    assert pacer.allowance(quiet=False) == math.floor(0.095 * 0.05 * 1000)


def test_without_fast_forward_a_quiet_stretch_runs_at_the_watch_speed() -> None:
    pacer = Pacer(0.05, fast_forward=False)
    assert pacer.speed_now(quiet=True) == 0.05


async def test_the_status_line_says_when_a_quiet_stretch_is_fast_forwarded() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        for _ in range(100):
            if app.fast_forwarding:
                break
            await pilot.pause(0.05)
        assert app.fast_forwarding, f"seed {SEED}: no quiet stretch within 5 s"
        assert "fast-forward x2" in app.query_one(StatusLine).status.fast


async def test_capital_f_turns_fast_forwarding_off_and_on() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("F")
        assert not app.pacer.fast_forward
        await pilot.press("F")
        assert app.pacer.fast_forward
