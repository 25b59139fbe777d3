"""Raft's safety properties (Figure 3), checked while the simulation runs.

The monitor watches the event stream and every commit and apply, and raises
`SafetyViolation` at the first moment a property breaks -- not at the end of the run, when
the evidence is gone:

* **Election Safety**: at most one leader per term (from the "became leader" events).
* **State Machine Safety / Log Matching on committed entries**: every entry a node holds at
  or below its commit index, and every entry it applies, is the one entry committed at that
  index -- the *canonical* committed log, recorded from whichever node committed it first.
* **Leader Completeness**: a leader of term T holds every entry that a leader of an earlier
  term committed. (Only earlier terms: a node may still win a stale term from delayed votes
  after a later term committed more; it is deposed as soon as it hears of that term.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kv.raft import Entry


class SafetyViolation(AssertionError):
    """A Raft safety property was broken (the message says which, when and where)."""


class LogView(Protocol):
    """What the monitor reads of a node's log (`kv.raft.RawNode` has it)."""

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def slice(self, lo: int, hi: int) -> list[Entry]: ...


class SafetyMonitor:
    """The canonical committed log and the facts needed to check the properties."""

    def __init__(self) -> None:
        #: The leader of each term.
        self.leaders: dict[int, int] = {}
        #: The entry committed at each index, as first seen committed.
        self.committed: dict[int, Entry] = {}
        #: The highest index a leader of each term committed.
        self.committed_by_term: dict[int, int] = {}
        #: Per node, the index up to which its committed log was compared already.
        self._checked: dict[int, int] = {}

    def leader_elected(self, node: int, term: int, log: LogView) -> None:
        leader = self.leaders.setdefault(term, node)
        if leader != node:
            raise SafetyViolation(f"Election Safety: n{leader} and n{node} both lead term {term}")
        must_hold = max((i for t, i in self.committed_by_term.items() if t < term), default=0)
        self._compare(node, log, 1, must_hold, "Leader Completeness: the new leader")

    def commit_advanced(
        self, node: int, term: int, is_leader: bool, log: LogView, commit: int
    ) -> None:
        """``node`` (leading or not) now has commit index ``commit``."""
        if is_leader:
            previous = self.committed_by_term.get(term, 0)
            self.committed_by_term[term] = max(previous, commit)
        checked = self._checked.get(node, 0)
        if commit > checked:
            self._compare(node, log, checked + 1, commit, "State Machine Safety:")
            self._checked[node] = commit

    def restarted(self, node: int) -> None:
        """``node`` restarted: compare its whole committed log again at its next commit."""
        self._checked.pop(node, None)

    def applied(self, node: int, entries: Sequence[Entry]) -> None:
        for entry in entries:
            canonical = self.committed.get(entry.index)
            if canonical is None:
                raise SafetyViolation(
                    f"n{node} applied index {entry.index}, which no node has committed"
                )
            if canonical != entry:
                raise SafetyViolation(
                    f"State Machine Safety: n{node} applied {_brief(entry)} at index "
                    f"{entry.index}, but {_brief(canonical)} was committed there"
                )

    def _compare(self, node: int, log: LogView, lo: int, hi: int, what: str) -> None:
        """``log`` must hold the canonical entries [lo, hi]; record the ones not seen yet."""
        lo = max(lo, log.first_index())  # below it: compacted, covered by a snapshot
        if hi < lo:
            return
        if hi > log.last_index():
            raise SafetyViolation(f"{what} n{node} lacks committed entries up to {hi}")
        for entry in log.slice(lo, hi + 1):
            canonical = self.committed.setdefault(entry.index, entry)
            if canonical != entry:
                raise SafetyViolation(
                    f"{what} n{node} holds {_brief(entry)} at index {entry.index}, but "
                    f"{_brief(canonical)} was committed there"
                )


def _brief(entry: Entry) -> str:
    data = entry.data[:24].hex() + ("..." if len(entry.data) > 24 else "")
    return f"(term {entry.term}, {entry.type.name.lower()} {data or 'empty'})"
