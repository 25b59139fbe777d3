"""Every key of ``kv tui``, driven by Textual's pilot: each test presses a key (and answers
its picker) and checks the change it makes to the simulated cluster, through the session."""

from __future__ import annotations

from kv.raft import Role
from tests.tui.pilot import SEED, SIZE, paused_app
from tui.app import SimApp
from tui.session import PropertyStatus
from tui.speed import SPEEDS


async def test_the_app_opens_with_a_leader_already_elected() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE):
        assert app.session.cluster.leader() is not None, f"seed {SEED}"


async def test_space_pauses_and_resumes_the_run() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        assert not app.paused
        before = app.session.cluster.now
        await pilot.pause(0.3)
        assert app.session.cluster.now > before, "running: virtual time moves"
        await pilot.press("space")
        assert app.paused
        stopped = app.session.cluster.now
        await pilot.pause(0.2)
        assert app.session.cluster.now == stopped, "paused: virtual time stands still"


async def test_full_stop_takes_one_event_forward() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        position = app.session.position
        await pilot.press("full_stop")
        assert app.session.position == position + 1


async def test_comma_takes_one_event_back() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        position = app.session.position
        await pilot.press("comma")
        assert app.session.position == position - 1


async def test_plus_and_minus_change_the_speed() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        speed = app.pacer.speed
        await pilot.press("plus")
        assert app.pacer.speed == SPEEDS[SPEEDS.index(speed) + 1]
        await pilot.press("minus", "minus")
        assert app.pacer.speed == SPEEDS[SPEEDS.index(speed) - 1]


async def test_c_sends_a_client_put_that_gets_applied() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        app.session.run_for(500)
        leader = app.session.cluster.leader()
        assert leader is not None
        assert app.session.cluster.nodes[leader].get("k0") == "v1", f"seed {SEED}"


async def test_r_crashes_the_leader_and_a_later_term_elects_one() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        cluster = app.session.cluster
        leader = cluster.leader()
        assert leader is not None
        term = cluster.nodes[leader].term
        await pilot.press("r")
        assert not app.session.cluster.nodes[leader].up
        app.session.run_for(5_000)
        cluster = app.session.cluster
        new = cluster.leader()
        assert new is not None and cluster.nodes[new].term > term, f"seed {SEED}"


async def test_k_then_a_number_crashes_that_node() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k", "2")
        assert not app.session.cluster.nodes[2].up


async def test_shift_r_then_a_number_restarts_a_crashed_node() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k", "2")
        await pilot.press("R", "2")
        assert app.session.cluster.nodes[2].up


async def test_p_then_a_number_isolates_that_node() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p", "3")
        network = app.session.cluster.network
        assert not network.connected(3, 1) and not network.connected(1, 3)
        assert network.connected(1, 2)


async def test_o_cuts_one_link_one_way() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o", "1", "2")
        network = app.session.cluster.network
        assert not network.connected(1, 2)
        assert network.connected(2, 1)


async def test_h_heals_every_link() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p", "3")
        await pilot.press("h")
        assert not app.session.cluster.network.cut_links


async def test_l_makes_one_link_lose_every_message() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l", "1", "2", "2")  # n1 -> n2: "lose every message"
        before = app.session.cluster.network.dropped.total()
        app.session.run_for(1_000)
        assert app.session.cluster.network.dropped.total() > before


async def test_x_transfers_leadership_to_the_chosen_node() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        leader = app.session.cluster.leader()
        target = 2 if leader != 2 else 3
        await pilot.press("x", str(target))
        app.session.run_for(2_000)
        assert app.session.cluster.leader() == target, f"seed {SEED}"


async def test_m_adds_a_learner() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "a")
        app.session.run_for(2_000)
        assert 4 in app.session.cluster.nodes, f"seed {SEED}"


async def test_m_then_p_promotes_a_learner_that_caught_up() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "a")
        cluster = app.session.cluster
        assert app.session.cluster.run_until(lambda c: 4 in c.membership.learners, 5_000)
        app.session.run_for(2_000)  # it catches up
        await pilot.press("m", "p")
        app.session.run_for(2_000)
        cluster = app.session.cluster
        assert 4 in cluster.ids and not cluster.membership.learners, f"seed {SEED}"


async def test_m_then_a_number_removes_that_member() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "3")
        app.session.run_for(2_000)
        assert 3 not in app.session.cluster.ids, f"seed {SEED}"


def ticks_left(app: SimApp) -> list[int]:
    """How many ticks each running follower has before its election timer fires."""
    left = []
    for node in app.session.cluster.nodes.values():
        timer = node.election_timer
        if timer is not None and node.role is not Role.LEADER:
            left.append(timer[1] - timer[0])
    return sorted(left)


async def test_a_aligns_the_election_timers_and_t_spreads_them() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        leader = app.session.cluster.leader()
        assert leader is not None
        await pilot.press("k", str(leader), "a")
        aligned = ticks_left(app)
        assert len(aligned) == 2 and aligned[0] == aligned[1], aligned
        await pilot.press("t")
        spread = ticks_left(app)
        election_tick = app.session.config.election_tick
        assert spread[1] - spread[0] >= election_tick // 2, spread


async def test_a_number_selects_the_node_the_keys_pane_shows() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert app.selected == 2


async def test_q_quits() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
    assert app.return_code == 0


def test_a_follower_is_shown_as_a_follower() -> None:
    from tui.view import node_rows

    app = paused_app()
    rows = node_rows(app.session.cluster)
    roles = {row.id: row.role for row in rows}
    for node_id, node in app.session.cluster.nodes.items():
        if node.role is Role.FOLLOWER:
            assert roles[node_id] == "follower"


async def test_capital_n_asks_for_a_seed_and_starts_a_new_run_from_it() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("N")
        await pilot.press(*["backspace"] * 10, "4", "2", "enter")
        session = app.session
        assert session.seed == 42 and session.nodes == 3
        assert session.config == paused_app().session.config, "the same settings"
        assert session.cluster.leader() is not None, "seed 42: warmed up to a leader"


async def test_the_safety_panel_is_computed_again_only_when_the_position_changes() -> None:
    app = paused_app()
    async with app.run_test(size=SIZE) as pilot:
        calls = []
        session = app.session
        real = session.safety

        def counted() -> list[PropertyStatus]:
            calls.append(session.position)
            return real()

        session.safety = counted  # type: ignore[method-assign]
        app.refresh_view()
        app.refresh_view()
        assert calls == []
        await pilot.press("full_stop")
        app.refresh_view()
        assert calls == [session.position]
