"""One timeline of a session: the actions taken at positions, and what was seen on it.

A *position* counts entries from the start of the run: each entry is either one simulator
event (`kv.sim.Cluster.step`) or one action a person took (`tui.session.actions`). A run is a
pure function of (seed, configuration, actions at positions), so a timeline stores only its
actions; everything else here is a cache of what replaying them gives -- keyframes (copies
of the cluster every ``keyframe_every`` entries, so that a rewind replays at most that many
entries), marks for the scrubber, and the violation that froze it, if one did.

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
    marks: list[Mark] = field(default_factory=list)
    #: The terms with an election mark already (`tui.session.narration.marks`).
    elections: set[int] = field(default_factory=set)
    violation: Freeze | None = None

    def recorded(self) -> list[Recorded]:
        """The actions in order."""
        return [self.actions[p] for p in sorted(self.actions)]

    def keyframe_before(self, position: int) -> int:
        """The latest keyframe at or before ``position``."""
        return max(p for p in self.keyframes if p <= position)

    def fork(self, position: int, own_index: int, elections: set[int]) -> Timeline:
        """A new timeline that shares this one's past up to ``position`` (``elections``: the
        terms that had an election by then)."""
        return Timeline(
            actions={p: r for p, r in self.actions.items() if p <= position},
            length=position,
            parent=own_index,
            forked_at=position,
            keyframes={p: c for p, c in self.keyframes.items() if p <= position},
            marks=[mark for mark in self.marks if mark.position <= position],
            elections=elections,
        )
