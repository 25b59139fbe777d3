"""Attach mode on a real 3-member ``kv cluster``, broken from the TUI itself.

The cluster is the ``cluster`` fixture of the ``kv cluster`` tests (three ``kv serve``
processes, fast timers, stopped after the test); the TUI is given its directory, so kill,
restart, partition and heal run the same `kv.cluster.control` functions as ``kv cluster
kill/restart/partition/heal``. Every expectation is polled with a deadline (`until`).

The watch feed is checked across a kill of the member it watches: it resumes on another member
and shows every event of the history exactly once, in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from textual.pilot import Pilot
from textual.widgets import SelectionList

from kv.cluster.layout import Layout
from tests.cluster.conftest import base_port, cluster  # noqa: F401 (fixtures)
from tests.tui.attach_pilot import (
    POLL_INTERVAL,
    choose,
    feed_across_a_kill,
    one_leader,
    row,
    until,
)
from tui.attach import AttachApp
from tui.attach.model import MemberRow, Role


@contextlib.asynccontextmanager
async def attached(layout: Layout) -> AsyncIterator[tuple[AttachApp, Pilot[None], MemberRow]]:
    """The TUI attached to ``layout``'s cluster, once it shows one leader: app, pilot, leader."""
    app = AttachApp(
        layout.endpoints.split(","), cluster_dir=layout.root, poll_interval=POLL_INTERVAL
    )
    async with app.run_test(size=(100, 30)) as pilot:
        yield app, pilot, await until(pilot, lambda: one_leader(app), "leader")


def leader_after(app: AttachApp, old: MemberRow) -> MemberRow | None:
    """A member other than ``old`` that leads in a later term."""
    assert old.sample is not None
    later = [r for r in app.rows if r.sample is not None and r.sample.term > old.sample.term]
    return next((r for r in later if r.role is Role.LEADER and r.name != old.name), None)


async def test_a_leader_killed_from_the_tui_is_down_and_back_after_a_restart_from_the_tui(
    cluster: Layout,  # noqa: F811
) -> None:
    async with attached(cluster) as (app, pilot, leader):
        await pilot.press("k")
        await choose(pilot, leader.name)
        down = await until(
            pilot, lambda: (r := row(app, leader.name)) and r.role is Role.DOWN and r, "DOWN"
        )
        assert down.retry_in is not None
        await until(pilot, lambda: leader_after(app, leader), "new leader among the others")
        assert app.is_running
        await pilot.press("R")
        await choose(pilot, leader.name)
        back = await until(pilot, lambda: (r := row(app, leader.name)) and r.up and r, "back")
        assert back.role in (Role.FOLLOWER, Role.LEADER, Role.NO_LEADER)


async def test_a_leader_partitioned_from_the_tui_is_replaced_and_heal_reunites_the_cluster(
    cluster: Layout,  # noqa: F811
) -> None:
    async with attached(cluster) as (app, pilot, leader):
        await pilot.press("p")
        marks = app.screen.query_one(SelectionList)
        marks.highlighted = ["n1", "n2", "n3"].index(leader.name)
        await pilot.press("space", "enter")
        await until(pilot, lambda: leader_after(app, leader), "leader on the majority side")
        await pilot.press("h")
        await until(
            pilot,
            lambda: (
                (one := one_leader(app))
                and all(r.sample and r.sample.leader == one.member_id for r in app.rows)
            ),
            "one leader that every member follows after heal",
        )


async def test_leadership_moves_to_the_member_chosen_in_the_tui(
    cluster: Layout,  # noqa: F811
) -> None:
    async with attached(cluster) as (app, pilot, leader):
        target = next(r for r in app.rows if r.role is Role.FOLLOWER)
        await pilot.press("x")
        await choose(pilot, target.name)
        await until(
            pilot, lambda: (one := one_leader(app)) and one.name == target.name, "moved leader"
        )
        assert leader.name != target.name


async def test_the_watch_feed_resumes_on_another_member_and_sees_every_event_once(
    cluster: Layout,  # noqa: F811
) -> None:
    async with attached(cluster) as (app, pilot, _):
        names = app.local.names if app.local else []

        async def kill(name: str) -> None:
            await pilot.press("k")
            await choose(pilot, name)

        await feed_across_a_kill(pilot, names, kill)
