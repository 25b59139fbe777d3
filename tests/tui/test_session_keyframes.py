"""Keyframes thin out as a run grows (bounded memory), and a rewind from a thinned-out
keyframe lands on exactly the state a replay from the start gives."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from kv.sim import Cluster
from tui.session import Session, actions, views
from tui.session.session import KEYFRAME_SPARSEST
from tui.session.timeline import KeyframePolicy, Timeline


def busy_session(**keyframes: int) -> Session:
    """Three nodes, a crash, a restart and client writes: a state worth comparing."""
    session = Session.new(nodes=3, seed=7, **keyframes)
    session.run_for(2_000)
    for i in range(5):
        session.act(actions.ClientPut(f"k{i}", f"v{i}"))
        session.run_for(300)
    session.act(actions.RestartLeader())
    session.run_for(20_000)
    return session


def test_keyframes_never_exceed_the_cap_over_a_long_run() -> None:
    session = Session.new(nodes=3, seed=7, keyframe_every=10, keyframe_cap=20)
    for _ in range(60):
        session.run_for(1_000)
        assert len(session.timeline.keyframes) <= 20, f"at {session.position} [seed 7]"
    assert session.length // 10 > 20 * 10, "the run is long enough for the cap to matter"


class Frame:
    """Stands in for a cluster: the policy only ever copies it."""

    def copy(self) -> Frame:
        return self


def test_below_the_cap_a_run_of_n_entries_keeps_o_log_n_keyframes() -> None:
    policy = KeyframePolicy(every=1, per_level=4, max_spacing=2**30, cap=10**6)
    timeline, frame = Timeline(), cast(Cluster, Frame())
    counts = {}
    for position in range(0, 100_001):
        timeline.length = position
        timeline.keep_keyframe(position, frame, policy)
        if position in (1_000, 10_000, 100_000):
            counts[position] = len(timeline.keyframes)
    # per_level at the newest spacing, per_level / 2 per doubling after, and position 0
    assert all(count <= 4 + 2 * (n // 4).bit_length() + 1 for n, count in counts.items())
    assert counts[100_000] - counts[1_000] <= 2 * 7, counts  # 100 times longer: +~6.6 bands


def test_the_newest_keyframes_are_every_entries_apart_and_older_ones_sparser() -> None:
    session = Session.new(nodes=3, seed=7, keyframe_every=10)
    session.run_for(30_000)
    end = session.length - session.length % 10
    kept = sorted(session.timeline.keyframes)
    assert kept[-8:] == list(range(end - 70, end + 1, 10)), kept[-8:]
    gaps = [b - a for a, b in itertools.pairwise(kept)]
    assert max(gaps) == 10 * KEYFRAME_SPARSEST and gaps == sorted(gaps, reverse=True), gaps


@dataclass
class Replays:
    """Counts the simulator events run (`kv.sim.Cluster.step`) since the last `reset`."""

    steps: int = 0

    def reset(self) -> None:
        self.steps = 0


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> Replays:
    counter = Replays()
    original = Cluster.step

    def counting(cluster: Cluster) -> bool:
        counter.steps += 1
        return original(cluster)

    monkeypatch.setattr(Cluster, "step", counting)
    return counter


def test_a_rewind_replays_from_the_nearest_keyframe_not_from_the_start(replays: Replays) -> None:
    session = Session.new(nodes=3, seed=7, keyframe_every=100)
    session.run_for(20_000)
    assert session.length > 1_000
    replays.reset()
    session.seek(session.length - 5)
    assert replays.steps < 100


def test_a_rewind_anywhere_replays_at_most_the_largest_spacing(replays: Replays) -> None:
    session = busy_session(keyframe_every=10)
    for target in range(0, session.length, session.length // 50):
        replays.reset()
        session.seek(target)
        assert replays.steps <= 10 * KEYFRAME_SPARSEST, (
            f"seek({target}) replayed {replays.steps} entries [seed 7]"
        )


def test_a_rewind_from_a_thinned_keyframe_lands_on_the_state_of_a_replay_from_the_start(
    tmp_path: Path,
) -> None:
    session = busy_session(keyframe_every=10, keyframe_cap=12)
    assert len(session.timeline.keyframes) <= 12
    session.save(tmp_path / "run.json")
    fresh = Session.load(tmp_path / "run.json", keyframe_every=10**9)  # no keyframe but 0
    for target in (1, 333, session.length // 3, session.length // 2, session.length - 1):
        for each in (session, fresh):
            each.seek(target)
        assert views.states(session.cluster) == views.states(fresh.cluster), target
        assert session.diff() == fresh.diff(), target
        assert session.pending() == fresh.pending(), target
        assert [str(line) for line in session.narration()] == [
            str(line) for line in fresh.narration()
        ], target
        stores = [n.store.history if n.store else None for n in session.cluster.nodes.values()]
        assert stores == [
            n.store.history if n.store else None for n in fresh.cluster.nodes.values()
        ]


def test_running_on_from_a_rewind_leaves_the_keyframe_it_started_from_unchanged() -> None:
    session = busy_session(keyframe_every=10)
    kept = sorted(session.timeline.keyframes)
    middle = kept[len(kept) // 2]
    keyframe = session.timeline.keyframes[middle]
    events, states = list(keyframe.events), views.states(keyframe)
    session.seek(middle + 3)
    session.act(actions.ClientPut("after", "the rewind"))  # forks; runs on from the copy
    session.run_for(5_000)
    assert keyframe.events == events and views.states(keyframe) == states, "[seed 7]"
