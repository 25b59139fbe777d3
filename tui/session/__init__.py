"""tui.session: the pure model the TUI drives -- a simulated cluster with time travel.

No Textual here: everything is plain, deterministic Python over `kv.sim`, tested with
pytest. The TUI's screens (``tui.app``) read a `Session` and call its methods.

    from tui.session import Session, actions
    s = Session.new(nodes=3, seed=7)
    s.run_for(2_000)                   # a leader by now
    s.act(actions.RestartLeader())     # RaftScope's r
    s.run_for(3_000)
    s.back(); s.seek(100)              # time travel (keyframes, not replay from 0)
    s.act(actions.ClientPut("k", "v")) # in the past: forks a new timeline

Modules, in reading order:

* `actions` -- what a person can do, as frozen dataclasses (JSON round-trip), each applied
  through `kv.sim.Cluster`'s public surface and told as a sentence.
* `plain` -- dataclasses to JSON values and back by their fields' types (traces).
* `narration` -- the event log as lines (the events' own sentences), scrubber `Mark`s,
  messages in a few words.
* `timeline` -- one line of history: actions at positions, keyframes, marks, a `Freeze`.
* `views` -- what the inspectors show: `Pending` tasks (choose the next event), `Change`s
  since the previous event, the four safety properties (`PropertyStatus`).
* `trace` -- save and load: JSON of seed, nodes, configuration and timelines' actions; or a
  failing seed (``kv.sim.Cluster.describe``'s line).
* `scenarios` -- scripted scenarios whose steps fire on the model's events, narrated
  ("step 2 of 3: ..."), steps as data (`scenarios.steps`), Raft's Figure 8 among them;
  `Session.play` / `Session.for_scenario`, ``cue``, `Session.resume`.
* `session` -- `Session`: step, run, act, rewind, fork, freeze on a safety violation.

Interface notes for the app (beyond issue 9's sketch): a *position* counts entries, each one
simulator event OR one action (so `Session.back` undoes an action alone); ``frozen`` is a
`Freeze` (position, time, cause, message); ``pending()`` ids are `kv.sim` task ids;
``Session.load`` also reads a `kv.sim.Cluster.describe` line. Actions that are `kv.sim`'s
faults or membership steps are those classes (`actions.Crash` is `kv.sim.Crash`, and so are
`Timeout(node)`: campaign now, and `Amnesia(node)`: restart with a wiped disk, which breaks
safety); the TUI's own are the rest (`ClientPut`, `RestartLeader`, `Deliver`, `Note`, ...).
"""

from tui.session import actions
from tui.session.narration import Line, Mark, MarkKind, Source
from tui.session.session import Session
from tui.session.timeline import Freeze, Recorded, Timeline
from tui.session.views import Change, NodeState, Pending, Property, PropertyStatus

__all__ = [
    "Change",
    "Freeze",
    "Line",
    "Mark",
    "MarkKind",
    "NodeState",
    "Pending",
    "Property",
    "PropertyStatus",
    "Recorded",
    "Session",
    "Source",
    "Timeline",
    "actions",
]
