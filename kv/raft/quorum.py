"""Majorities: the one piece of arithmetic Raft's safety rests on.

Any two majorities of the same set of voters share a member (Raft §5.2, §5.4). So a candidate
that won votes from a majority cannot share its term with another winner (Election Safety),
and an entry stored on a majority will be in the log of every later leader, because that
leader needed a vote from someone in that majority (Leader Completeness, §5.4.1).

Two questions are asked of a majority, both here (etcd: ``raft/quorum/majority.go``):

* `committed_index` -- given each voter's match index, the highest index a majority holds.
* `vote_result` -- given the votes cast so far, has the election been won, lost, or neither?
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping

#: What `committed_index` returns for an empty configuration: no constraint at all.
UNBOUNDED = 2**64 - 1


class VoteResult(enum.Enum):
    PENDING = "pending"  # neither side has a majority yet
    LOST = "lost"  # a majority can no longer be reached
    WON = "won"  # a majority granted


def majority(voter_count: int) -> int:
    """How many voters make a majority: 2 of 3, 3 of 4, 3 of 5."""
    return voter_count // 2 + 1


# --8<-- [start:committed-index]
def committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The highest index stored on a majority of ``voters``.

    Sort the voters' match indexes from high to low; the majority-th one is held by that many
    voters (and more). A voter with no entry in ``match`` counts as 0. An empty configuration
    returns `UNBOUNDED`, so that it never holds back a commit (etcd does the same).
    """
    if not voters:
        return UNBOUNDED
    indexes = sorted((match.get(voter, 0) for voter in voters), reverse=True)
    return indexes[majority(len(voters)) - 1]


# --8<-- [end:committed-index]


# --8<-- [start:vote-result]
def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """Tally ``votes`` (voter -> granted?) among ``voters``; others' votes do not count."""
    if not voters:
        # An empty configuration wins: etcd's convention, so that joint configurations work.
        return VoteResult.WON
    granted = sum(1 for voter in voters if votes.get(voter) is True)
    missing = sum(1 for voter in voters if voter not in votes)
    needed = majority(len(voters))
    if granted >= needed:
        return VoteResult.WON
    if granted + missing >= needed:
        return VoteResult.PENDING
    return VoteResult.LOST


# --8<-- [end:vote-result]
