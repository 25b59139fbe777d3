"""The configuration a node works with, and per member the `Progress` a leader tracks.

One object answers every question that depends on who the members are: who votes (an
election's tally, the commit index, whether a quorum was recently active) and who only learns.
It changes only through `ProgressTracker.apply_change` (a committed `ConfChange` the
application applies) and `ProgressTracker.restore` (a snapshot's `ConfState`). etcd:
``raft/tracker/tracker.go`` and ``raft/confchange/confchange.go``, without joint consensus:
kv changes one member at a time (thesis §4.1), which is what etcd 3.4 does too.
"""

from __future__ import annotations

from collections.abc import Iterator

from kv.raft.messages import ConfChange, ConfChangeType, ConfState
from kv.raft.progress import Progress
from kv.raft.quorum import VoteResult, committed_index, majority, vote_result


class ConfChangeError(ValueError):
    """A configuration change that cannot be applied (e.g. removing the last voter)."""


class ProgressTracker:
    """Voters, learners, their progress, and the votes of the current election."""

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.voters: set[int] = set()
        self.learners: set[int] = set()
        self.progress: dict[int, Progress] = {}
        #: The current election's votes: voter -> granted?
        self.votes: dict[int, bool] = {}

    def conf_state(self) -> ConfState:
        return ConfState(voters=tuple(self.voters), learners=tuple(self.learners))

    def ids(self) -> list[int]:
        """Every member, voters and learners, in id order (a deterministic visiting order)."""
        return sorted(self.progress)

    def __iter__(self) -> Iterator[tuple[int, Progress]]:
        for member in self.ids():
            yield member, self.progress[member]

    def is_singleton(self) -> bool:
        """Is there exactly one voter? (It can decide everything alone.)"""
        return len(self.voters) == 1

    # -- quorum questions -----------------------------------------------------------------

    def committed(self) -> int:
        """The highest index a majority of voters has stored."""
        return committed_index(
            self.voters, {voter: self.progress[voter].match for voter in self.voters}
        )

    def record_vote(self, voter: int, granted: bool) -> None:
        """Count a vote; a voter's first answer in an election is the one that counts."""
        self.votes.setdefault(voter, granted)

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        """(granted, rejected, result) among the current voters."""
        granted = sum(1 for voter in self.voters if self.votes.get(voter) is True)
        rejected = sum(1 for voter in self.voters if self.votes.get(voter) is False)
        return granted, rejected, vote_result(self.voters, self.votes)

    def reset_votes(self) -> None:
        self.votes = {}

    def quorum_active(self) -> bool:
        """Did a majority of voters answer recently? (CheckQuorum; the leader counts itself.)"""
        active = sum(1 for voter in self.voters if self.progress[voter].recent_active)
        return active >= majority(len(self.voters)) if self.voters else True

    # -- changing the configuration --------------------------------------------------------

    def restore(self, conf_state: ConfState, next_index: int) -> None:
        """Start over from ``conf_state`` (at startup, or from a snapshot)."""
        self.voters = set()
        self.learners = set()
        self.progress = {}
        for voter in conf_state.voters:
            self._add(voter, next_index, learner=False)
        for learner in conf_state.learners:
            self._add(learner, next_index, learner=True)

    # --8<-- [start:apply-change]
    def apply_change(self, change: ConfChange, next_index: int) -> None:
        """Apply one member change (etcd's ``confchange.Changer.Simple``).

        A new member's progress starts with ``next = next_index`` (the leader's last index:
        the first append probes there) and counts as recently active, so that a leader does
        not step down for a member that has had no chance to answer yet.

        Raises:
            ConfChangeError: the change would leave no voter.
        """
        node = change.node_id
        if node == 0:
            return  # etcd: "ignore any zero-valued ID"
        if change.type is ConfChangeType.ADD_NODE:
            if node in self.learners:  # promotion: keep what we know of its log
                self.learners.discard(node)
                self.voters.add(node)
                self.progress[node].is_learner = False
            elif node not in self.voters:
                self._add(node, next_index, learner=False)
        elif change.type is ConfChangeType.ADD_LEARNER_NODE:
            if node in self.voters:  # demotion
                self._check_voters_left(self.voters - {node})
                self.voters.discard(node)
                self.learners.add(node)
                self.progress[node].is_learner = True
            elif node not in self.learners:
                self._add(node, next_index, learner=True)
        elif change.type is ConfChangeType.REMOVE_NODE:
            if node in self.voters:
                self._check_voters_left(self.voters - {node})
            self.voters.discard(node)
            self.learners.discard(node)
            self.progress.pop(node, None)
            self.votes.pop(node, None)
        # UPDATE_NODE changes nothing Raft knows about.

    # --8<-- [end:apply-change]

    def _add(self, node: int, next_index: int, *, learner: bool) -> None:
        (self.learners if learner else self.voters).add(node)
        progress = Progress(
            next_index=max(next_index, 1), max_inflight=self.max_inflight, is_learner=learner
        )
        progress.recent_active = True
        self.progress[node] = progress

    @staticmethod
    def _check_voters_left(voters: set[int]) -> None:
        if not voters:
            raise ConfChangeError("removed all voters")
