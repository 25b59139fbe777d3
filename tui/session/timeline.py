"""One timeline of a session: the actions taken at positions, and what was seen on it.

A *position* counts entries from the start of the run: each entry is either one simulator
event (`kv.sim.Cluster.step`) or one action a person took (`tui.session.actions`). A run is a
pure function of (seed, configuration, actions at positions), so a timeline stores only its
actions; everything else here is a cache of what replaying them gives -- keyframes (copies
of the cluster, so that a rewind replays a bounded number of entries), marks for the
scrubber, and the violation that froze it, if one did.

Keyframes thin out with age (`KeyframePolicy`): the newest are ``every`` entries apart, and
each older band of ``per_level`` spans is twice as sparse as the one after it, up to
``max_spacing``; so a run of n entries keeps O(log n) keyframes until the spacing reaches
``max_spacing``, and n / ``max_spacing`` after that, and never more than ``cap`` (past it,
every spacing doubles, as often as it takes: rewinds get slower, memory stays bounded). A
rewind copies the keyframe and replays at most the spacing where it lands: ``every``
entries near the end, ``max_spacing`` (4,000 by default, about 0.2 s) anywhere in a run of up
to about ``cap * max_spacing`` entries. A keyframe is cheap enough to keep that many because
`kv.sim.Cluster.copy` shares what cannot change (the events, the stored values) and copies
only the containers and the mutable state.

Acting in the past forks: `Timeline.fork` keeps the actions, keyframes and marks up to the
position, and the old timeline stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kv.sim import Cluster
from tui.session.actions import Action
from tui.session.narration import Mark


@dataclass(frozen=True, slots=True)
class Recorded:
    """An action and where it was taken: the entry at ``position``, at virtual ``time_ms``."""

    position: int
    time_ms: int
    action: Action


@dataclass(frozen=True, slots=True)
class Freeze:
    """A safety violation stopped the run: the entry at ``position`` (at ``time_ms``) broke
    a property. ``cause`` says what that entry was; ``message`` is the monitor's."""

    position: int
    time_ms: int
    cause: str
    message: str

    def __str__(self) -> str:
        return f"at {self.time_ms}ms, entry {self.position} ({self.cause}): {self.message}"


@dataclass(frozen=True, slots=True)
class KeyframePolicy:
    """Which keyframes a timeline keeps (see the module docstring)."""

    #: Entries between the newest keyframes.
    every: int = 500
    #: Keyframes per band of one spacing (the newest band), before the spacing doubles.
    per_level: int = 8
    #: The spacing never grows past this (while under ``cap``): a rewind's longest replay.
    max_spacing: int = 4_000
    #: The most keyframes a timeline keeps.
    cap: int = 1024

    def __post_init__(self) -> None:
        ratio, rest = divmod(self.max_spacing, self.every)
        if self.every < 1 or self.per_level < 1 or self.cap < 2 or rest or ratio & (ratio - 1):
            raise ValueError(f"bad keyframe policy (max_spacing: every * a power of 2): {self}")

    def spacing(self, age: int, scale: int = 1) -> int:
        """How far apart keyframes are ``age`` entries behind the newest position: ``every``
        doubled once per band of ``per_level`` spans behind, at most ``max_spacing`` --
        each times ``scale`` (a power of two, grown to stay under ``cap``)."""
        every = self.every * scale
        level = (age // (every * self.per_level)).bit_length()
        return min(self.max_spacing * scale, every << level)


@dataclass(slots=True)
class Timeline:
    """The actions of one line of history, and the caches of replaying them."""

    #: Position -> the action taken there.
    actions: dict[int, Recorded] = field(default_factory=dict)
    #: The furthest position reached on this timeline.
    length: int = 0
    #: The timeline it was forked from, and where (None, 0: the first one).
    parent: int | None = None
    forked_at: int = 0
    #: Position -> a copy of the cluster just after that entry (never handed out: copied).
    keyframes: dict[int, Cluster] = field(default_factory=dict)
    #: What the policy's spacings are multiplied by: doubled whenever the keyframes would
    #: exceed `KeyframePolicy.cap`.
    keyframe_scale: int = 1
    marks: list[Mark] = field(default_factory=list)
    #: The terms with an election mark already (`tui.session.narration.marks`).
    elections: set[int] = field(default_factory=set)
    violation: Freeze | None = None
    #: False for a timeline loaded from a trace and not replayed yet: ``length`` is the
    #: trace's, and the caches (keyframes but 0, marks, violation) fill in on the replay
    #: (`tui.session.Session.switch`).
    replayed: bool = True

    def recorded(self) -> list[Recorded]:
        """The actions in order."""
        return [self.actions[p] for p in sorted(self.actions)]

    def keyframe_before(self, position: int) -> int:
        """The latest keyframe at or before ``position``."""
        return max(p for p in self.keyframes if p <= position)

    def keep_keyframe(self, position: int, cluster: Cluster, policy: KeyframePolicy) -> None:
        """Keep a copy of ``cluster`` (just after the entry at ``position``) if ``policy``
        wants one there, and drop the keyframes it no longer wants."""
        if position % policy.every or position in self.keyframes:
            return
        if not self._wants(position, policy):
            return  # a replay behind the end, where the keyframes have thinned out
        self.keyframes[position] = cluster.copy()
        self._thin(policy)

    def _wants(self, position: int, policy: KeyframePolicy) -> bool:
        if position == 0:
            return True  # the start: every rewind can begin somewhere
        age = max(self.length, position) - position
        return position % policy.spacing(age, self.keyframe_scale) == 0

    def _thin(self, policy: KeyframePolicy) -> None:
        # A spacing only grows (with age, with the scale) and is a power of two times
        # ``every``, so a keyframe dropped now would be dropped later too: thinning never
        # needs it back. Each doubling of the scale keeps fewer; only 0 is left in the end.
        self.keyframes = {p: c for p, c in self.keyframes.items() if self._wants(p, policy)}
        while len(self.keyframes) > policy.cap:
            self.keyframe_scale *= 2
            self.keyframes = {p: c for p, c in self.keyframes.items() if self._wants(p, policy)}

    def fork(self, position: int, own_index: int, elections: set[int]) -> Timeline:
        """A new timeline that shares this one's past up to ``position`` (``elections``: the
        terms that had an election by then)."""
        return Timeline(
            actions={p: r for p, r in self.actions.items() if p <= position},
            length=position,
            parent=own_index,
            forked_at=position,
            keyframes={p: c for p, c in self.keyframes.items() if p <= position},
            keyframe_scale=self.keyframe_scale,
            marks=[mark for mark in self.marks if mark.position <= position],
            elections=elections,
        )
