"""Scenarios one key away: scripts of actions triggered by the model's events, narrated.

In the manner of The Secret Lives of Data, but driven by the simulator rather than by a
clock: each `Step` waits for a condition on the cluster ("someone leads", "n2 caught up"),
then takes its actions and shows its line ("step 2 of 4: ..."), pausing there if it says so.
The conditions are checked after every entry of the session (`tui.session.Session.play`),
so a scenario runs the same, entry for entry, whatever speed the UI runs at -- and its
actions and lines are recorded on the timeline like any other
(`tui.session.actions.Note`): rewinding, forking and traces work on scenarios too.

Modules, in reading order:

* `steps` -- `Step`, `Scenario`, `Cue`, `ScenarioRun`; conditions and scripts as data.
* `elections` -- leader crash (1), split vote (2), partitioned leader with PreVote and
  CheckQuorum (4) and without (5).
* `figure8` -- the Raft paper's Figure 8, ending (d) overwritten (3) or (e) committed (9).
* `members` -- lagging follower caught up by snapshot (6), learner added and promoted (7),
  leader removed (8).
* `leases` -- a lease across a leader change, never revoked by the deposed leader (0).

Every scenario is also a test (tests/tui/test_scenarios*.py) that checks its outcome.
"""

from dataclasses import replace

from tui.session.scenarios.elections import (
    LEADER_CRASH,
    PARTITIONED_LEADER,
    PARTITIONED_LEADER_BARE,
    SPLIT_VOTE,
)
from tui.session.scenarios.figure8 import FIGURE_8, FIGURE_8_COMMITTED
from tui.session.scenarios.leases import LEASE_ACROSS_A_LEADER_CHANGE
from tui.session.scenarios.members import LEADER_REMOVED, LEARNER, SNAPSHOT_CATCH_UP
from tui.session.scenarios.steps import Cue, Scenario, ScenarioRun, Step

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        LEADER_CRASH,
        SPLIT_VOTE,
        FIGURE_8,
        PARTITIONED_LEADER,
        PARTITIONED_LEADER_BARE,
        SNAPSHOT_CATCH_UP,
        LEARNER,
        LEADER_REMOVED,
        FIGURE_8_COMMITTED,
        LEASE_ACROSS_A_LEADER_CHANGE,
    )
}
"""Every scenario by its key (``s`` then the key, in the TUI)."""


def with_seed(scenario: Scenario, seed: int) -> Scenario:
    return replace(scenario, seed=seed)


__all__ = [
    "FIGURE_8",
    "FIGURE_8_COMMITTED",
    "LEADER_CRASH",
    "LEADER_REMOVED",
    "LEARNER",
    "LEASE_ACROSS_A_LEADER_CHANGE",
    "PARTITIONED_LEADER",
    "PARTITIONED_LEADER_BARE",
    "SCENARIOS",
    "SNAPSHOT_CATCH_UP",
    "SPLIT_VOTE",
    "Cue",
    "Scenario",
    "ScenarioRun",
    "Step",
    "with_seed",
]
