"""Attach mode on the real etcd 3.4: three ``etcd`` processes, one killed while attached;
the leases listed and one revoked.

The same screen must work on etcd as on kv (it uses the public API only). The cluster is a
`tests.cluster.processes.ProcessCluster` of kind ``etcd`` on free ports; the member is killed
and restarted by the test (etcd has no ``kv cluster`` controls), in a thread so that the
TUI's event loop keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kv.client import KVClient
from tests.cluster.processes import ProcessCluster
from tests.tui.attach_pilot import (
    POLL_INTERVAL,
    feed_across_a_kill,
    lease_keys,
    one_leader,
    revoke_from_the_tui,
    row,
    until,
)
from tui.attach import AttachApp
from tui.attach.keys import KeyBrowser
from tui.attach.model import Role

pytestmark = pytest.mark.etcd


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    members = ProcessCluster.create("etcd", tmp_path)
    members.start()
    yield members
    members.stop()


def attach(members: ProcessCluster, page_size: int = 50) -> AttachApp:
    return AttachApp(members.endpoints, poll_interval=POLL_INTERVAL, page_size=page_size)


async def test_an_etcd_member_killed_while_attached_is_down_and_back_after_its_restart(
    etcd_cluster: ProcessCluster,
) -> None:
    app = attach(etcd_cluster)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: one_leader(app), "leader")
        assert {r.name for r in app.rows} == {"n1", "n2", "n3"}
        assert all(r.sample and r.sample.version.startswith("3.4") for r in app.rows)
        victim = etcd_cluster.named("n2")
        await asyncio.to_thread(etcd_cluster.kill, victim)
        down = await until(
            pilot, lambda: (r := row(app, "n2")) and r.role is Role.DOWN and r, "n2 DOWN"
        )
        assert down.retry_in is not None and app.is_running
        await until(pilot, lambda: any(r.role is Role.LEADER for r in app.rows), "a leader")
        await asyncio.to_thread(etcd_cluster.restart, victim)
        await until(pilot, lambda: (r := row(app, "n2")) and r.up, "n2 back")


async def test_the_key_browser_pages_through_etcds_keys(etcd_cluster: ProcessCluster) -> None:
    async with KVClient(etcd_cluster.endpoints[0]) as client:
        for i in range(12):
            await client.put(f"k{i:02}", "v")
    app = attach(etcd_cluster, page_size=5)
    async with app.run_test() as pilot:
        await pilot.press("b")
        browser = app.query_one(KeyBrowser)
        await until(pilot, lambda: len(browser.kvs) == 5 and browser.total == 12, "page 1")
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: browser.pager.page_number == 2 and browser.pending is None, "p2")
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: [kv.key for kv in browser.kvs] == [b"k10", b"k11"], "last page")


async def test_the_watch_feed_on_etcd_resumes_on_another_member_and_sees_every_event_once(
    etcd_cluster: ProcessCluster,
) -> None:
    app = attach(etcd_cluster)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: one_leader(app), "leader")

        async def kill(name: str) -> None:
            await asyncio.to_thread(etcd_cluster.kill, etcd_cluster.named(name))

        await feed_across_a_kill(pilot, ["n1", "n2", "n3"], kill)


async def test_etcds_leases_are_listed_with_their_keys_and_one_is_revoked_from_the_tui(
    etcd_cluster: ProcessCluster,
) -> None:
    async with KVClient(etcd_cluster.endpoints[0]) as client:
        granted = await client.lease_grant(60)
        await client.put("held", "v", lease=granted.ID)
        app = attach(etcd_cluster)
        async with app.run_test(size=(110, 30)) as pilot:
            keys = await until(pilot, lambda: lease_keys(app, granted.ID), "its keys")
            assert keys == [b"held"]
            await revoke_from_the_tui(pilot, granted.ID)
        assert await client.get("held") is None
        assert list((await client.lease_leases()).leases) == []
