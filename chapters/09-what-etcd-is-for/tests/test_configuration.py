"""Chapter 9: dynamic configuration (`kv.recipes.configuration`) on a real three-member kv
cluster: every change applied once, in revision order, a txn's changes together, across a
killed member and across a compaction of the history it needed.
"""

from __future__ import annotations

import pytest

from kv.client import KVClient, put_op
from kv.recipes.configuration import Change, ConfigFollower
from tests.cluster.processes import ProcessCluster, wait_for
from tests.recipes.running import running

pytestmark = pytest.mark.etcd

PREFIX = b"/config/web/"


class Recorder:
    """An ``apply`` that records each batch of changes it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Change]] = []

    def __call__(self, changes: list[Change]) -> None:
        self.batches.append(changes)

    @property
    def changes(self) -> list[Change]:
        return [change for batch in self.batches for change in batch]


async def caught_up(follower: ConfigFollower, revision: int) -> None:
    async def probe() -> bool | None:
        return True if follower.revision >= revision else None

    await wait_for(probe, f"follower at revision {revision}")


async def test_a_follower_applies_each_change_once_in_revision_order_a_txn_together(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    recorder = Recorder()
    async with KVClient(leader.endpoint) as client:
        loaded = await client.put(PREFIX + b"workers", b"4")
        follower = ConfigFollower(cluster.endpoints, PREFIX, recorder)
        async with running(follower.follow()):
            await caught_up(follower, loaded.header.revision)
            await client.put(PREFIX + b"workers", b"8")
            await client.put(b"/config/other/ignored", b"x")  # outside the prefix
            await client.txn(
                success=[put_op(PREFIX + b"host", b"a"), put_op(PREFIX + b"port", b"81")]
            )
            last = await client.delete_range(PREFIX + b"host")
            await caught_up(follower, last.header.revision)
    rev = loaded.header.revision
    assert recorder.batches == [
        [Change(PREFIX + b"workers", b"4", rev)],  # the load
        [Change(PREFIX + b"workers", b"8", rev + 1)],
        [Change(PREFIX + b"host", b"a", rev + 3), Change(PREFIX + b"port", b"81", rev + 3)],
        [Change(PREFIX + b"host", None, rev + 4)],
    ]
    assert follower.settings == {PREFIX + b"workers": b"8", PREFIX + b"port": b"81"}


async def test_a_follower_resumes_on_another_member_without_missing_or_repeating_a_change(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    followed = next(member for member in cluster.members if member is not leader)
    others = [member.endpoint for member in cluster.members if member is not followed]
    recorder = Recorder()
    follower = ConfigFollower([followed.endpoint, *others], PREFIX, recorder)
    written: list[int] = []
    async with KVClient(leader.endpoint) as client, running(follower.follow()):
        for n in range(40):
            written.append((await client.put(PREFIX + b"n", str(n).encode())).header.revision)
            if n == 15:
                await caught_up(follower, written[-1])
                cluster.kill(followed)
        await caught_up(follower, written[-1])
    assert follower.resumes >= 1
    seen = [(c.revision, c.value) for c in recorder.changes if c.key == PREFIX + b"n"]
    assert seen == [(rev, str(n).encode()) for n, rev in enumerate(written)]


async def test_after_the_history_it_needs_is_compacted_a_follower_reloads_and_says_so(
    cluster: ProcessCluster,
) -> None:
    leader, _ = await cluster.agreed_leader()
    recorder = Recorder()
    follower = ConfigFollower(cluster.endpoints, PREFIX, recorder)
    async with KVClient(leader.endpoint) as client:
        await client.put(PREFIX + b"a", b"1")
        last = await client.put(PREFIX + b"b", b"1")
        async with running(follower.follow()):
            await caught_up(follower, last.header.revision)
        # Away: three changes, then a compaction past all of them.
        await client.put(PREFIX + b"a", b"2")
        await client.put(PREFIX + b"a", b"3")
        await client.delete_range(PREFIX + b"b")
        latest = await client.put(b"/elsewhere", b"x")
        await client.compact(latest.header.revision)
        async with running(follower.follow()):
            await caught_up(follower, latest.header.revision)
    assert follower.resyncs == 1
    assert recorder.batches[-1] == [
        Change(PREFIX + b"a", b"3", latest.header.revision, resynced=True),  # "2" was skipped
        Change(PREFIX + b"b", None, latest.header.revision, resynced=True),
    ]
    assert follower.settings == {PREFIX + b"a": b"3"}
