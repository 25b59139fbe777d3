"""What happened inside a node, as a stream of structured events.

The core appends an event whenever something worth telling happens -- a role change, a vote,
a commit -- and the caller drains them (`kv.raft.node.RawNode.take_events`). One stream serves
every reader: tests assert on it, the TUI shows it as a live log, and the docs print it. Each
event is a frozen dataclass (for code) whose ``str`` is one sentence (for people)::

    n2 became candidate at term 3
    n3 granted vote to n2 at term 3
    n2 became leader at term 3
    n2 committed index 7

``node`` is the node the event happened on, ``term`` its term at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass


def name(node: int) -> str:
    """How events and transcripts write a node id: ``n1``."""
    return f"n{node}"


@dataclass(frozen=True, slots=True)
class Event:
    node: int
    term: int

    def __str__(self) -> str:
        return f"{name(self.node)} {type(self).__name__} at term {self.term}"


@dataclass(frozen=True, slots=True)
class BecameFollower(Event):
    leader: int  # 0 when not known yet

    def __str__(self) -> str:
        leader = f" (leader {name(self.leader)})" if self.leader else ""
        return f"{name(self.node)} became follower at term {self.term}{leader}"


@dataclass(frozen=True, slots=True)
class BecamePreCandidate(Event):
    def __str__(self) -> str:
        return f"{name(self.node)} became pre-candidate at term {self.term}"


@dataclass(frozen=True, slots=True)
class BecameCandidate(Event):
    def __str__(self) -> str:
        return f"{name(self.node)} became candidate at term {self.term}"


@dataclass(frozen=True, slots=True)
class BecameLeader(Event):
    def __str__(self) -> str:
        return f"{name(self.node)} became leader at term {self.term}"


@dataclass(frozen=True, slots=True)
class VoteGranted(Event):
    """``node`` granted its (pre-)vote to ``candidate`` for term ``term``."""

    candidate: int
    pre_vote: bool = False

    def __str__(self) -> str:
        kind = "pre-vote" if self.pre_vote else "vote"
        return f"{name(self.node)} granted {kind} to {name(self.candidate)} at term {self.term}"


@dataclass(frozen=True, slots=True)
class VoteRejected(Event):
    """``node`` refused ``candidate``: already voted, or the candidate's log is behind."""

    candidate: int
    pre_vote: bool = False

    def __str__(self) -> str:
        kind = "pre-vote" if self.pre_vote else "vote"
        return f"{name(self.node)} rejected {kind} for {name(self.candidate)} at term {self.term}"


@dataclass(frozen=True, slots=True)
class VoteIgnored(Event):
    """With CheckQuorum, a node that heard from its leader within the election timeout
    ignores vote requests: the leader is alive (thesis §4.2.3, disruptive servers)."""

    candidate: int
    request_term: int
    pre_vote: bool = False

    def __str__(self) -> str:
        kind = "pre-vote" if self.pre_vote else "vote"
        return (
            f"{name(self.node)} ignored {kind} request from {name(self.candidate)} for term "
            f"{self.request_term} at term {self.term}: leader lease"
        )


@dataclass(frozen=True, slots=True)
class Committed(Event):
    index: int

    def __str__(self) -> str:
        return f"{name(self.node)} committed index {self.index}"


@dataclass(frozen=True, slots=True)
class QuorumLost(Event):
    """CheckQuorum: a leader that did not hear from a majority for an election timeout."""

    def __str__(self) -> str:
        return f"{name(self.node)} lost its quorum at term {self.term} and stepped down"


@dataclass(frozen=True, slots=True)
class LeaderTransferStarted(Event):
    transferee: int

    def __str__(self) -> str:
        return (
            f"{name(self.node)} started transferring leadership to {name(self.transferee)} "
            f"at term {self.term}"
        )


@dataclass(frozen=True, slots=True)
class SnapshotSent(Event):
    to: int
    index: int

    def __str__(self) -> str:
        return f"{name(self.node)} sent snapshot at index {self.index} to {name(self.to)}"


@dataclass(frozen=True, slots=True)
class SnapshotRestored(Event):
    index: int
    snapshot_term: int

    def __str__(self) -> str:
        return (
            f"{name(self.node)} restored snapshot at index {self.index} (term {self.snapshot_term})"
        )


@dataclass(frozen=True, slots=True)
class ConfChangeApplied(Event):
    change: str  # e.g. "AddNode n4"
    voters: tuple[int, ...]
    learners: tuple[int, ...]

    def __str__(self) -> str:
        voters = ",".join(name(v) for v in self.voters) or "-"
        learners = ",".join(name(v) for v in self.learners) or "-"
        return f"{name(self.node)} applied {self.change}: voters {voters}, learners {learners}"


@dataclass(frozen=True, slots=True)
class ProposalDropped(Event):
    reason: str

    def __str__(self) -> str:
        return f"{name(self.node)} dropped a proposal at term {self.term}: {self.reason}"
