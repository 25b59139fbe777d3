"""Figure 8 of the Raft paper (§5.4.2): why a leader may not commit an entry of an earlier
term by counting the members that hold it.

The figure, with kv's messages. Five nodes; PreVote and CheckQuorum off, as in the paper;
one entry per append message (``SimConfig.max_size_per_msg=1``), so that a follower takes a
new leader's log piece by piece, as in the figure.

* (a) n1 leads term 2 and its entry at index 2 reaches n2 only; n1 crashes.
* (b) n5 is elected in term 3 (by n3, n4 and itself) and puts a different entry at index 2;
  n5 crashes before sending it.
* (c) n1 restarts, is elected in term 4 and sends its term-2 entry to n3: index 2 is on a
  majority, and n1's match indexes say so -- but nobody's commit index covers it, because
  kv's core, like etcd's (``maybeCommit``), commits by counting only entries of the leader's
  own term.
* (d) ``FIGURE_8``: n1 crashes; n5 is elected again and overwrites index 2 everywhere. Had
  the term-2 entry been committed at (c), a committed entry would now be lost.
* (e) ``FIGURE_8_COMMITTED``: n1 instead gets its own term-4 entry onto a majority; that
  commits it, and index 2 with it.

What differs from the drawing, honestly: a kv leader, like etcd's, appends an empty entry of
its term when elected (Raft thesis §6.4), and no client writes here -- so the figure's
entries *are* those empty entries: n1's at index 2 in term 2, n5's at index 2 in term 3,
n1's at index 3 in term 4, which is exactly where the figure draws them. n1 gets its
term-3 election only on its second try (n3 and n4 voted for n5 in term 3), and n5 its
second election only in term 5 (everyone voted in term 4). At (c), n2 holds the term-4
entry too (it already had index 2, so it took index 3 at once); in the figure only n1
does. Neither changes the point: the term-4 entry is on two nodes of five, not a majority.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kv.sim import Cluster, SimConfig
from tui.session import actions
from tui.session.actions import Action
from tui.session.scenarios.steps import (
    CannotWin,
    Memory,
    NodeLeads,
    Scenario,
    Step,
    Take,
    Then,
    always,
)

#: The paper's Raft, with one entry per append message (see the module docstring).
CONFIG = SimConfig(pre_vote=False, check_quorum=False, max_size_per_msg=1)


def entry_term(cluster: Cluster, node: int, index: int) -> int | None:
    """The term of ``node``'s entry at ``index`` (None if it holds none there)."""
    return next((e.term for e in cluster.nodes[node].log if e.index == index), None)


@dataclass(frozen=True, slots=True)
class EveryoneCommitted:
    """Every member's commit index reached ``index``."""

    index: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        return all(cluster.nodes[i].commit >= self.index for i in cluster.ids)


@dataclass(frozen=True, slots=True)
class Acked:
    """Leader ``leader`` knows that ``follower`` holds its log up to ``index``."""

    leader: int
    follower: int
    index: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        status = cluster.nodes[self.leader].status()
        progress = status.progress.get(self.follower) if status is not None else None
        return progress is not None and progress.match >= self.index


@dataclass(frozen=True, slots=True)
class OnDisk:
    """``node`` wrote its entry at ``index`` to disk (it survives a crash)."""

    node: int
    index: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        return any(e.index == self.index for e in cluster.nodes[self.node].persisted_log)


@dataclass(frozen=True, slots=True)
class OnAMajority:
    """Leader ``leader``'s match indexes put its entry at ``index`` on a majority (what a
    leader would commit by counting replicas). Remembers the entry's term as
    ``majority_term``."""

    leader: int
    index: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        status = cluster.nodes[self.leader].status()
        if status is None or not status.progress:
            return False
        matches = sorted((p.match for p in status.progress.values()), reverse=True)
        if matches[len(matches) // 2] < self.index:
            return False
        memory["majority_term"] = entry_term(cluster, self.leader, self.index) or 0
        return True


@dataclass(frozen=True, slots=True)
class Committed:
    """``node``'s commit index reached ``index``."""

    node: int
    index: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        return cluster.nodes[self.node].commit >= self.index


@dataclass(frozen=True, slots=True)
class Everywhere:
    """Every member runs, holds an entry of ``term`` at ``index``, and has committed up to
    ``committed``."""

    index: int
    term: int
    committed: int

    def __call__(self, cluster: Cluster, memory: Memory) -> bool:
        return all(
            cluster.nodes[i].up
            and cluster.nodes[i].commit >= self.committed
            and entry_term(cluster, i, self.index) == self.term
            for i in cluster.ids
        )


@dataclass(frozen=True, slots=True)
class CampaignFor:
    """Time ``node`` out as often as it takes to campaign for ``term``: once if its term is
    the one before, more if it never heard of the terms between (each timeout is one more
    election, §5.2)."""

    node: int
    term: int

    def __call__(self, cluster: Cluster, memory: Memory) -> Sequence[Action]:
        times = max(1, self.term - cluster.nodes[self.node].term)
        return [actions.Timeout(self.node)] * times


def _to(node: int, *others: int) -> actions.Cut:
    """Cut what ``node`` sends to ``others`` (they can still reach it)."""
    return actions.Cut.of([node], others)


#: (a) to (c): the same for both endings.
BEFORE_C = (
    Step(
        "Raft's Figure 8 on five nodes (PreVote and CheckQuorum off, one entry per append "
        "message). n2 times out and campaigns for term 1",
        always,
        Take((actions.Timeout(2),)),
        pause=False,
    ),
    Step(
        "n2 leads term 1; its first entry (index 1, term 1) is committed everywhere. "
        "n1 times out and campaigns for term 2",
        EveryoneCommitted(1),
        Take((actions.Timeout(1),)),
    ),
    Step(
        "n1 leads term 2. A kv leader, like etcd's, appends an empty entry when elected: "
        "it is the figure's entry at index 2, term 2. Cut n1 off from n3, n4 and n5: only "
        "n2 will get it",
        NodeLeads(1),
        Take((_to(1, 3, 4, 5),)),
        pause=False,
    ),
    Step(
        "(a) index 2 of term 2 is on n1 and n2 only, and n1 crashes. n5 times out and "
        "campaigns for term 3 (twice if it never heard of term 2)",
        Acked(1, 2, 2),
        Then((Take((actions.Crash(1), actions.Heal())), CampaignFor(5, 3))),
    ),
    Step(
        "n5 leads term 3, elected by n3, n4 and itself (n2 refused: its log ends in a later "
        "term than n5's). Its empty entry goes to index 2 in term 3: a different entry. Cut "
        "n5 off before it sends it",
        NodeLeads(5),
        Take((_to(5, 1, 2, 3, 4),)),
        pause=False,
    ),
    Step(
        "(b) n5 wrote index 2 of term 3 to its disk, and crashes. n1 restarts and "
        "campaigns for term 3",
        OnDisk(5, 2),
        Take((actions.Crash(5), actions.Heal(), actions.Restart(1), actions.Timeout(1))),
    ),
    Step(
        "n3 and n4 voted for n5 in term 3: n1 cannot win term 3. It times out again, for term 4",
        CannotWin(1),
        Take((actions.Timeout(1),)),
        pause=False,
    ),
    Step(
        "n1 leads term 4; its empty entry goes to index 3. First only n2 hears from it: "
        "cut n1 off from n3 and n4",
        NodeLeads(1),
        Take((_to(1, 3, 4),)),
        pause=False,
    ),
    Step(
        "n2 took index 3 of term 4 (it had index 2 already). Now let n3 hear from n1, "
        "which sends it what it lacks one entry at a time, index 2 first (n4 still hears "
        "nothing, as in the figure)",
        Acked(1, 2, 3),
        Take((actions.Heal(), _to(1, 4))),
        pause=False,
    ),
)

_C = (
    "(c) n1's match indexes put index 2 (term {majority_term}) on n1, n2 and n3 -- a "
    "majority -- yet every commit index stays at 1: a leader commits by counting replicas "
    "only an entry of its own term (§5.4.2; etcd's maybeCommit checks the term)"
)

FIGURE_8 = Scenario(
    "3",
    "Figure 8 (d): an old term's entry on a majority is not committed, and is overwritten "
    "(Raft §5.4.2)",
    (
        *BEFORE_C,
        Step(
            _C + ". n1 crashes now, before it sends more",
            OnAMajority(1, 2),
            Take((actions.Crash(1),)),
        ),
        Step(
            "n5 restarts and campaigns for term 4",
            always,
            Take((actions.Heal(), actions.Restart(5), actions.Timeout(5))),
            pause=False,
        ),
        Step(
            "n2 and n3 voted for n1 in term 4: n5 cannot win it. It times out again, for term 5",
            CannotWin(5),
            Take((actions.Timeout(5),)),
            pause=False,
        ),
        Step(
            "n5 leads term 5, elected by n3, n4 and itself (n2 refused: its log ends in term "
            "4). Restart n1",
            NodeLeads(5),
            Take((actions.Restart(1),)),
            pause=False,
        ),
        Step(
            "(d) n5 overwrote index 2 on every node with its term-3 entry: the term-2 entry "
            "that sat on a majority is gone. That is safe only because nobody committed it; "
            "the safety monitor stayed quiet",
            Everywhere(2, 3, 3),
        ),
    ),
    nodes=5,
    config=CONFIG,
)

FIGURE_8_COMMITTED = Scenario(
    "9",
    "Figure 8 (e): an old term's entry is committed with the first entry of the leader's "
    "own term (Raft §5.4.2)",
    (
        *BEFORE_C,
        Step(_C + ". Heal the network; n1 goes on", OnAMajority(1, 2), Take((actions.Heal(),))),
        Step(
            "(e) n1's term-4 entry at index 3 reached a majority: n1 commits it, and index 2 "
            "of term 2 with it. Restart n5",
            Committed(1, 3),
            Take((actions.Restart(5),)),
        ),
        Step(
            "n5 came back: its term-3 entry at index 2 was never committed, and n1 replaced "
            "it with the committed term-2 entry",
            Everywhere(2, 2, 3),
        ),
    ),
    nodes=5,
    config=CONFIG,
)
