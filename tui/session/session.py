"""`Session`: a simulated cluster you can run, pause, step, rewind, fork and break.

Theory of operation
-------------------
A session owns one live `kv.sim.Cluster` (``cluster``, what the views read) and a list of
`tui.session.timeline.Timeline`s. It moves along the current timeline one *entry* at a
time: an entry is either one simulator event (`kv.sim.Cluster.step`) or one action
(`tui.session.actions`). ``position`` is how many entries were taken.

* Forward (`step`, `run_for`): at the end of the timeline, the next entry is the simulator's
  next event and the timeline grows; behind the end (after a rewind) it is the recorded
  future -- the recorded action at that position, or else the next event.
* An action (`act`) is applied now and recorded at the next position; behind the end of the
  timeline, that *forks* a new timeline, and the old one stays listed (RaftScope's slider).
* Backward (`back`, `seek`): the nearest keyframe at or before the target (a `Cluster.copy`
  taken every ``keyframe_every`` entries, thinned out with age:
  `tui.session.timeline.KeyframePolicy`) is copied and replayed forward to the target, so a
  rewind costs at most ``keyframe_every`` entries near the end of the run and
  `KEYFRAME_SPARSEST` times that further back, while a long run keeps few keyframes.
* Safety: `kv.sim.SafetyMonitor` raises `kv.sim.SafetyViolation` inside the entry that
  broke a property; the session catches it, records a `Freeze` on the timeline (position,
  time, what the entry was) and stops there: ``frozen`` is set, `step` and `run_for` refuse
  to go on, and a rewind (then an action, to fork) is the way out.

An action is applied at the virtual time it was taken: the clock may have moved past the last
event (`run_for` moves it to the end of its slice); replays move it the same way.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from kv.raft.events import BecameCandidate
from kv.sim import Cluster, SafetyViolation, SimConfig
from kv.sim.timeline.events import TimedEvent
from tui.session import narration, trace, views
from tui.session.actions import Action, ActionTaken, Note
from tui.session.narration import Line, Mark, MarkKind
from tui.session.scenarios import Cue, Scenario, ScenarioRun
from tui.session.timeline import Freeze, KeyframePolicy, Recorded, Timeline
from tui.session.views import Change, Pending, PropertyStatus

#: The most members a session runs: etcd's FAQ recommends clusters of three, five or seven
#: members, since each member beyond that adds replication work and no useful tolerance.
MAX_NODES = 7

#: Entries between the newest keyframes: a rewind near the end replays at most this many (the
#: simulator does tens of thousands a second, and a copy of a small cluster takes a few
#: milliseconds); older keyframes are sparser (`KeyframePolicy`).
KEYFRAME_EVERY = 500
#: How many times sparser than ``keyframe_every`` the oldest keyframes get: a rewind far
#: back replays up to 4,000 entries (~0.2 s at ~20 µs an entry) after the copy of the
#: keyframe, so that one anywhere in a ten-minute run stays within the TUI's one second.
KEYFRAME_SPARSEST = 8
#: The most keyframes a timeline keeps (a 3-node cluster's copy is ~30 kB at the start, and
#: grows by a pointer per value its members store: `kv.sim.Cluster.copy` shares the values).
KEYFRAME_CAP = 1024


class Session:
    """A run of the simulator with time travel (see the module docstring)."""

    def __init__(
        self,
        nodes: int = 3,
        seed: int = 0,
        config: SimConfig | None = None,
        *,
        keyframe_every: int = KEYFRAME_EVERY,
        keyframe_cap: int = KEYFRAME_CAP,
    ) -> None:
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"a session runs 1 to {MAX_NODES} nodes, not {nodes}")
        self.nodes = nodes
        self.seed = seed
        self.config = config if config is not None else SimConfig()
        self.keyframe_every = keyframe_every
        self.keyframes = KeyframePolicy(
            every=keyframe_every, max_spacing=KEYFRAME_SPARSEST * keyframe_every, cap=keyframe_cap
        )
        self.cluster = Cluster.create(nodes, seed=seed, config=self.config)
        self.position = 0
        self.timelines = [Timeline()]
        self.current = 0
        self.timeline.keyframes[0] = self.cluster.copy()
        #: The scenario being played (`play`), and the last step's cue for the UI.
        self.scenario: ScenarioRun | None = None
        self.cue: Cue | None = None

    @classmethod
    def new(
        cls,
        nodes: int = 3,
        seed: int = 0,
        *,
        pre_vote: bool = True,
        check_quorum: bool = True,
        config: SimConfig | None = None,
        keyframe_every: int = KEYFRAME_EVERY,
        keyframe_cap: int = KEYFRAME_CAP,
    ) -> Session:
        """A session over a new cluster of ``nodes`` members (1..7) from ``seed``."""
        base = config if config is not None else SimConfig()
        config = replace(base, pre_vote=pre_vote, check_quorum=check_quorum)
        return cls(nodes, seed, config, keyframe_every=keyframe_every, keyframe_cap=keyframe_cap)

    # -- where we are ---------------------------------------------------------------------

    @property
    def timeline(self) -> Timeline:
        return self.timelines[self.current]

    @property
    def length(self) -> int:
        """The furthest position recorded on this timeline (> ``position`` after a rewind)."""
        return self.timeline.length

    @property
    def now(self) -> int:
        """Virtual time, ms."""
        return self.cluster.now

    @property
    def frozen(self) -> Freeze | None:
        """The violation that stopped the run, while we stand on it."""
        violation = self.timeline.violation
        return violation if violation is not None and violation.position == self.position else None

    @property
    def marks(self) -> list[Mark]:
        """The scrubber's marks on this timeline, in order."""
        return self.timeline.marks

    def narration(self, since: int = 0) -> list[Line]:
        """The event log as sentences, from event index ``since`` (`Line.index`)."""
        return narration.lines(self.cluster.events, since)

    def pending(self) -> list[Pending]:
        """Choose-the-next-event mode: every pending message and timer, in the order they
        would run; act with `actions.Deliver`, `Drop`, `Duplicate` or `Delay` on an id."""
        return views.pending(self.cluster)

    def diff(self) -> list[Change]:
        """What the last entry changed, per node (role, term, vote, commit, applied, log)."""
        if self.position == 0:
            return []
        live, position = self.cluster, self.position
        try:
            self.seek(position - 1)
            before = views.states(self.cluster)
        finally:
            self.cluster, self.position = live, position
        return views.changes(before, views.states(live))

    def safety(self) -> list[PropertyStatus]:
        """The four safety properties and whether each holds (a violation freezes the run)."""
        return views.safety(self.cluster, self.frozen)

    # -- forward --------------------------------------------------------------------------

    def step(self) -> bool:
        """One entry forward: the recorded future if behind the end, else the next event.
        False if nothing happened (frozen, or nothing left to run)."""
        if self.frozen is not None:
            return False
        target = self.position + 1
        recorded = self.timeline.actions.get(target)
        events = len(self.cluster.events)
        try:
            if recorded is not None:
                self._apply(recorded)
            elif not self.cluster.step():
                return False
        except SafetyViolation as violation:
            self._freeze(target, cause_of(recorded, self.cluster), str(violation))
            return True
        self._reached(target, events)
        self._poll()
        return True

    def run_for(self, ms: int) -> None:
        """Advance virtual time by ``ms`` (the UI's timer does this in slices). Stops early
        at a freeze."""
        end = self.cluster.now + ms
        while self.frozen is None and not (self.cue is not None and self.cue.pause):
            recorded = self.timeline.actions.get(self.position + 1)
            if recorded is not None:
                if recorded.time_ms > end:
                    break
            else:
                due = self.cluster.next_time()
                if due is None or due > end:
                    break
            self.step()
        if self.frozen is None and self.cue is None and self.cluster.now < end:
            self.cluster.now = end  # nothing is due before: the clock just moves

    def act(self, action: Action) -> None:
        """Apply ``action`` now, as the next entry. Behind the end of the timeline this
        forks a new timeline (the current one is kept, listed in ``timelines``).

        Raises:
            ValueError, KeyError: the action does not apply (an unknown task id, a removed
                member); nothing is recorded then.
        """
        recorded = Recorded(self.position + 1, self.cluster.now, action)
        events = len(self.cluster.events)
        try:
            self._apply(recorded)
        except SafetyViolation as violation:
            self._record(recorded)
            self._freeze(recorded.position, str(action), str(violation))
            return
        self._record(recorded)
        self._reached(recorded.position, events)

    # -- scenarios ------------------------------------------------------------------------

    def play(self, scenario: Scenario) -> None:
        """Play ``scenario`` from here: its steps fire as their conditions come true, each
        recorded as a `actions.Note` and its actions; `run_for` pauses at a step that says so
        (``cue``) until `resume`."""
        self.scenario = ScenarioRun(scenario)
        self.cue = None
        self._poll()

    def resume(self) -> None:
        """Go on after a scenario's pause."""
        self.cue = None

    def _poll(self) -> None:
        run = self.scenario
        if run is None or self.position != self.length or self.frozen is not None:
            return
        fired = run.poll(self.cluster)
        if fired is None:
            return
        cue, taken = fired
        self.scenario = None  # no step fires inside this one's actions
        try:
            self.act(Note(str(cue)))
            for action in taken:
                self.act(action)
        finally:
            self.scenario = run if not run.done else None
        self.cue = cue

    def _record(self, recorded: Recorded) -> None:
        if self.position < self.length:
            self._fork()
        self.timeline.actions[recorded.position] = recorded

    def _fork(self) -> None:
        events = self.cluster.events
        elections = {t.event.term for t in events if isinstance(t.event, BecameCandidate)}
        fork = self.timeline.fork(self.position, self.current, elections)
        self.timelines.append(fork)
        self.current = len(self.timelines) - 1

    def _apply(self, recorded: Recorded) -> None:
        cluster = self.cluster
        due = cluster.next_time()
        if due is not None and due < recorded.time_ms:
            raise AssertionError(f"replay diverged: an event is due before {recorded}")
        cluster.now = max(cluster.now, recorded.time_ms)
        cluster.events.append(TimedEvent(cluster.now, ActionTaken(str(recorded.action))))
        recorded.action.apply(cluster)

    def _reached(self, position: int, events_before: int) -> None:
        """Bookkeeping after the entry at ``position`` ran (``events_before``: how many
        events there were before it)."""
        self.position = position
        timeline = self.timeline
        if position > timeline.length:
            timeline.length = position
            new_events = self.cluster.events[events_before:]
            timeline.marks.extend(narration.marks(position, new_events, timeline.elections))
        timeline.keep_keyframe(position, self.cluster, self.keyframes)

    def _freeze(self, position: int, cause: str, message: str) -> None:
        self.position = position
        timeline = self.timeline
        timeline.length = max(timeline.length, position)
        timeline.violation = Freeze(position, self.cluster.now, cause, message)
        timeline.marks.append(Mark(position, self.cluster.now, MarkKind.VIOLATION, message))

    # -- traces ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the trace (`tui.session.trace`): seed, nodes, configuration, timelines."""
        data = {
            "trace": trace.VERSION,
            "seed": self.seed,
            "nodes": self.nodes,
            "config": trace.config_to_json(self.config),
            "timelines": [trace.timeline_to_json(t) for t in self.timelines],
            "current": self.current,
            "position": self.position,
        }
        Path(path).write_text(json.dumps(data, indent=1) + "\n")

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> Session:
        """A new session over the scenario's cluster, playing it."""
        session = cls(scenario.nodes, scenario.seed, scenario.config)
        session.play(scenario)
        return session

    @classmethod
    def load(cls, path: str | Path, *, keyframe_every: int = KEYFRAME_EVERY) -> Session:
        """The session a trace describes, replayed to where it was saved (a JSON trace, or
        the line `kv.sim.Cluster.describe` prints)."""
        return cls.from_trace(trace.read(path), keyframe_every=keyframe_every)

    @classmethod
    def from_trace(cls, data: dict[str, Any], *, keyframe_every: int = KEYFRAME_EVERY) -> Session:
        config = trace.config_from_json(data.get("config", {}))
        session = cls(
            int(data.get("nodes", 3)), int(data["seed"]), config, keyframe_every=keyframe_every
        )
        start = session.timeline.keyframes[0]
        loaded = [trace.timeline_from_json(t) for t in data.get("timelines", [])]
        for timeline, length in loaded:
            # Replayed when first shown (`switch`): a huge trace loads its current timeline.
            timeline.keyframes[0], timeline.length, timeline.replayed = start, length, False
        if loaded:
            session.timelines = [timeline for timeline, _ in loaded]
        session.switch(int(data.get("current", 0)))
        session.seek(int(data.get("position", session.length)))
        return session

    # -- backward -------------------------------------------------------------------------

    def back(self) -> None:
        """One entry back."""
        if self.position > 0:
            self.seek(self.position - 1)

    def seek(self, position: int) -> None:
        """Go to ``position`` (0..``length``) on the current timeline: forward by replaying
        the recorded future, backward from the nearest keyframe."""
        target = max(0, min(position, self.length))
        keyframe = self.timeline.keyframe_before(target)
        if target < self.position or keyframe > self.position:
            self.cluster = self.timeline.keyframes[keyframe].copy()
            self.position = keyframe
        while self.position < target and self.step():
            pass

    def switch(self, index: int) -> None:
        """Make timeline ``index`` current, at the position where it ends."""
        if not 0 <= index < len(self.timelines):
            raise IndexError(f"no timeline {index}")
        self.current = index
        if not self.timeline.replayed:
            self._replay_loaded()
            return
        keyframe = self.timeline.keyframe_before(self.timeline.length)
        self.cluster = self.timeline.keyframes[keyframe].copy()
        self.position = keyframe
        self.seek(self.timeline.length)

    def _replay_loaded(self) -> None:
        """Replay the current timeline, loaded from a trace, from the start to its length
        (the marks, keyframes and a freeze are found again on the way)."""
        timeline = self.timeline
        end, timeline.length, timeline.replayed = timeline.length, 0, True
        self.cluster, self.position = timeline.keyframes[0].copy(), 0
        while self.position < end and self.step():
            pass


def cause_of(recorded: Recorded | None, cluster: Cluster) -> str:
    """What the entry that just ran was, in words."""
    if recorded is not None:
        return str(recorded.action)
    last = cluster.tasks.last_run
    return str(last) if last is not None else "an event"
