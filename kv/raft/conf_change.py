"""Membership changes in the Raft core: one member at a time, in effect once applied
(chapter 5).

Theory of operation
-------------------
A `ConfChange` (add a voter, add a learner, remove a member) travels through the log as an
entry of type ``CONF_CHANGE`` and changes the configuration when the application *applies* it
(etcd's rule; the thesis allows switching as soon as the entry is in the log). Changing one
member at a time keeps every two majorities overlapping (thesis §4.1), but only if two changes
are never in flight together. Three places keep that true:

* **proposing** (`kv.raft.leader.propose`): a leader takes a new change only once the
  previous one is applied, and turns a second one into an empty entry;
  ``Raft.pending_conf_index`` is the index of the last change it took (a new leader sets it
  to its last index: its tail may hold one);
* **applying** (`apply`): the tracker changes its voters and learners
  (`kv.raft.tracker.ProgressTracker.apply_change`), and a leader reacts: it steps down if it
  is no longer a voter, commits what a smaller majority now holds, probes a new member;
* **campaigning** (`has_unapplied`, asked by `kv.raft.raft.Raft.hup`): a node with a
  committed change not yet applied does not campaign, since it does not know yet whom it
  would be asking.

Every function takes the `kv.raft.raft.Raft` it works on, as `kv.raft.leader` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kv.raft import events as ev
from kv.raft import leader
from kv.raft.messages import NONE, ConfChange, ConfState, EntryType
from kv.raft.roles import Role

if TYPE_CHECKING:
    from kv.raft.raft import Raft


# --8<-- [start:apply]
def apply(raft: Raft, change: ConfChange) -> ConfState:
    """Apply a committed configuration change: the new configuration."""
    raft.tracker.apply_change(change, next_index=raft.log.last_index())
    conf_state = raft.tracker.conf_state()
    raft.emit(
        ev.ConfChangeApplied(
            raft.id,
            raft.term,
            f"{_name(change)} n{change.node_id}",
            conf_state.voters,
            conf_state.learners,
        )
    )
    own = raft.tracker.progress.get(raft.id)
    if raft.role is Role.LEADER and (own is None or own.is_learner):
        # A leader removed (or demoted) steps down; the others elect a new one.
        raft.become_follower(raft.term, NONE)
        return conf_state
    if raft.role is not Role.LEADER or not conf_state.voters:
        return conf_state
    if leader.maybe_commit(raft):
        # Fewer voters may mean a smaller majority: more may be committed now.
        leader.bcast_append(raft)
    else:
        # Probe new members right away rather than at the next proposal.
        for member in raft.tracker.ids():
            if member != raft.id:
                leader.maybe_send_append(raft, member, send_if_empty=False)
    if raft.lead_transferee != NONE and raft.lead_transferee not in raft.tracker.voters:
        raft.abort_leader_transfer()
    return conf_state


# --8<-- [end:apply]


def has_unapplied(raft: Raft) -> bool:
    """Is a configuration change committed but not yet applied here?"""
    lo = max(raft.log.applied + 1, raft.log.first_index())
    if lo > raft.log.committed:
        return False
    return any(
        entry.type is EntryType.CONF_CHANGE for entry in raft.log.slice(lo, raft.log.committed + 1)
    )


def _name(change: ConfChange) -> str:
    """etcd's name of the change's type, as the event shows it ("AddLearnerNode")."""
    return "".join(part.capitalize() for part in change.type.name.split("_"))
