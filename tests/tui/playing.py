"""Playing a scenario to its end in a test, keeping what the cluster looked like at each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from kv.raft import events as ev
from kv.sim import Cluster
from tui.session import Session
from tui.session.scenarios import Scenario

E = TypeVar("E", bound=ev.Event)


@dataclass
class Played:
    """A scenario played to its end."""

    scenario: Scenario
    session: Session
    #: Every step's line, in order ("step 2 of 3: ...").
    cues: list[str] = field(default_factory=list)
    #: A copy of the cluster just after each step fired (its actions taken), by step number.
    at: dict[int, Cluster] = field(default_factory=dict)

    def events(self, kind: type[E], cluster: Cluster | None = None) -> list[E]:
        """The core's events of ``kind`` (on the final cluster, or on ``cluster``)."""
        events = (cluster or self.session.cluster).events
        return [t.event for t in events if isinstance(t.event, kind)]

    def take_cue(self) -> None:
        """Keep the step that just fired, if one did, and go on."""
        cue = self.session.cue
        if cue is not None:
            self.cues.append(str(cue))
            self.at[cue.number] = self.session.cluster.copy()
            self.session.resume()

    def step_of(self, prefix: str) -> int:
        """The number of the step whose line starts with ``prefix``."""
        return next(
            number
            for number, cue in enumerate(self.cues, start=1)
            if cue.split(": ", 1)[1].startswith(prefix)
        )

    def __str__(self) -> str:
        return f"{self.scenario.title} [seed {self.scenario.seed}]"


def play(scenario: Scenario, limit_ms: int = 60_000) -> Played:
    """Play ``scenario`` one entry at a time to its end, resuming at every step (the
    safety monitor must stay quiet all along)."""
    played = Played(scenario, Session.for_scenario(scenario))
    session = played.session
    played.take_cue()
    while session.scenario is not None and session.now < limit_ms:
        assert session.step(), f"{played}: nothing left to run"
        assert session.frozen is None, f"{played}: {session.frozen}"
        played.take_cue()
    assert len(played.cues) == len(scenario.steps), f"{played}: {played.cues}"
    return played
