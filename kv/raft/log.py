"""The Raft log: stable entries in storage, an unstable tail in memory, and two cursors.

Theory of operation
-------------------
A node's log is one sequence of entries numbered from 1, but it lives in two places::

    storage (durable, maybe compacted)      unstable (in memory, not yet persisted)
    [snapshot][first_index ... offset-1]    [offset ... last_index]

and two cursors walk along it, never backwards::

    applied <= committed <= last_index

* ``committed`` -- the highest entry known to be stored on a majority (Raft §5.3). Once
  committed, an entry is never removed from any log that holds it (Leader Completeness,
  §5.4), which is why `append` refuses to truncate below ``committed``.
* ``applied`` -- the highest entry the application has applied to its state machine. The
  entries between the two are handed out by `next_committed_entries`.

The rules from Figure 2 that touch the log live here: the consistency check of AppendEntries
(`maybe_append`: "reply false if log doesn't contain an entry at prevLogIndex whose term
matches prevLogTerm"; "if an existing entry conflicts with a new one, delete the existing
entry and all that follow it"), the up-to-date comparison of RequestVote (`is_up_to_date`,
§5.4.1), and the leader's commit rule (`maybe_commit`, §5.4.2: only entries of the current
term are committed by counting replicas). etcd: ``raft/log.go``.
"""

from __future__ import annotations

from collections.abc import Sequence

from kv.raft.errors import CompactedError, UnavailableError
from kv.raft.messages import Entry, Snapshot
from kv.raft.storage import NO_LIMIT, Storage, limit_size
from kv.raft.unstable import Unstable


class RaftLog:
    """One node's view of the replicated log."""

    def __init__(self, storage: Storage, max_applying_size: int = NO_LIMIT) -> None:
        """The log as storage holds it; nothing unstable, nothing applied past the snapshot."""
        self.storage = storage
        self.unstable = Unstable(offset=storage.last_index() + 1)
        first = storage.first_index()
        #: Highest index known to be committed (Figure 2: commitIndex).
        self.committed = first - 1
        #: Highest index applied to the state machine (Figure 2: lastApplied).
        self.applied = first - 1
        self.max_applying_size = max_applying_size

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, len(unstable)={len(self.unstable.entries)})"
        )

    # -- where the log starts and ends ----------------------------------------------------

    def first_index(self) -> int:
        first = self.unstable.maybe_first_index()
        return first if first is not None else self.storage.first_index()

    def last_index(self) -> int:
        last = self.unstable.maybe_last_index()
        return last if last is not None else self.storage.last_index()

    def last_term(self) -> int:
        return self.term(self.last_index())

    def term(self, index: int) -> int:
        """The term of entry ``index``; ``first_index() - 1`` (the snapshot's) works too.

        Raises:
            CompactedError: the entry was compacted away.
            UnavailableError: the log does not reach ``index``.
        """
        # The valid range includes the dummy entry just before the first one.
        if index < self.first_index() - 1:
            raise CompactedError(f"index {index} < {self.first_index() - 1}")
        if index > self.last_index():
            raise UnavailableError(f"index {index} > {self.last_index()}")
        term = self.unstable.maybe_term(index)
        if term is not None:
            return term
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        """`term`, with 0 for an index outside the log (no real entry has term 0)."""
        try:
            return self.term(index)
        except (CompactedError, UnavailableError):
            return 0

    def match_term(self, index: int, term: int) -> bool:
        """Does this log hold an entry at ``index`` with ``term``? (Log Matching, §5.3)"""
        if index > self.last_index():
            # Not an error but the common case (a follower checking the new entries of each
            # MsgApp): answered without raising and catching `UnavailableError` per entry.
            return False
        try:
            return self.term(index) == term
        except (CompactedError, UnavailableError):
            return False

    # -- reading entries ------------------------------------------------------------------

    def entries(self, lo: int, max_size: int = NO_LIMIT) -> list[Entry]:
        """Entries from ``lo`` to the end, cut after ``max_size`` bytes (at least one)."""
        if lo > self.last_index():
            return []
        return self.slice(lo, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        """Every entry still in the log (for tests and status displays)."""
        return self.entries(self.first_index())

    def slice(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> list[Entry]:
        """Entries [lo, hi), from storage and then from the unstable tail.

        Raises:
            CompactedError: ``lo`` is below the first index.
        """
        if lo > hi:
            raise AssertionError(f"invalid slice {lo} > {hi}")
        first = self.first_index()
        if lo < first:
            raise CompactedError(f"index {lo} < first index {first}")
        if hi > self.last_index() + 1:
            raise AssertionError(f"slice [{lo}, {hi}) out of bound [{first}, {self.last_index()}]")
        if lo == hi:
            return []
        result: list[Entry] = []
        offset = self.unstable.offset
        if lo < offset:
            stored = self.storage.entries(lo, min(hi, offset), max_size)
            result.extend(stored)
            # Storage stopped early because of the byte limit: do not read further.
            if len(stored) < min(hi, offset) - lo:
                return result
        if hi > offset:
            result.extend(self.unstable.slice(max(lo, offset), hi))
        return limit_size(result, max_size)

    def unstable_entries(self) -> list[Entry]:
        """The entries the application has not persisted yet (`kv.raft.node.Ready.entries`)."""
        return list(self.unstable.entries)

    def next_committed_entries(self) -> list[Entry]:
        """Committed entries not yet applied (`kv.raft.node.Ready.committed_entries`)."""
        lo = max(self.applied + 1, self.first_index())
        if self.committed + 1 > lo:
            return self.slice(lo, self.committed + 1, self.max_applying_size)
        return []

    def has_next_committed_entries(self) -> bool:
        return self.committed + 1 > max(self.applied + 1, self.first_index())

    def snapshot(self) -> Snapshot:
        """The newest snapshot: an unstable one just received, or storage's."""
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # -- changing the log -----------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> int:
        """Append ``entries`` (replacing any entries from ``entries[0].index`` on).

        Returns:
            The new last index.
        """
        if not entries:
            return self.last_index()
        after = entries[0].index - 1
        if after < self.committed:
            # Truncating a committed entry would break Leader Completeness (§5.4).
            raise AssertionError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """The index of the first entry of ``entries`` that this log lacks or contradicts.

        0 if this log holds all of them. An existing entry "conflicts" with a new one when it
        has the same index but a different term (Figure 2, AppendEntries rule 3).
        """
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    # --8<-- [start:find-conflict-by-term]
    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last entry at or before ``index`` whose term is at most ``term``: (index, term).

        This is the fast backtracking of etcd (and of Raft §5.3's closing remark, "the
        follower can include the term of the conflicting entry..."). A follower that rejects
        a probe at (``index``, ``term``) knows every entry of the leader before that index has
        a term of at most ``term`` (terms never decrease along a log). So none of its own
        entries with a greater term can match, and it can skip them all in one reply. The
        leader runs the same search over its own log with the follower's hint.

        Returns (index, 0) when the search runs into the compacted part of the log, and
        (0, 0) when no entry qualifies.
        """
        while index > 0:
            try:
                our_term = self.term(index)
            except (CompactedError, UnavailableError):
                return index, 0
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    # --8<-- [end:find-conflict-by-term]

    # --8<-- [start:maybe-append]
    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: Sequence[Entry]
    ) -> int | None:
        """A follower's side of AppendEntries (Figure 2, receiver implementation 2-5).

        Args:
            index: prevLogIndex, the entry just before ``entries``.
            log_term: prevLogTerm, its term in the leader's log.
            committed: the leader's commit index (leaderCommit).
            entries: the new entries.

        Returns:
            The index of the last new entry, or None when the consistency check fails (this
            log has no entry at ``index`` with ``log_term``).
        """
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise AssertionError(
                    f"entry {conflict} conflicts with committed entry [committed({self.committed})]"
                )
            # Entries before the conflict are already here; append from it on.
            self.append(entries[conflict - (index + 1) :])
        # Rule 5: commitIndex = min(leaderCommit, index of last new entry). Not the last
        # index of our log: entries after last_new may be stale ones from an old leader.
        self.commit_to(min(committed, last_new))
        return last_new

    # --8<-- [end:maybe-append]

    def commit_to(self, index: int) -> None:
        """Move the commit index forward to ``index`` (never backward)."""
        if self.committed < index:
            if self.last_index() < index:
                raise AssertionError(
                    f"commit({index}) is out of range [last index({self.last_index()})]"
                )
            self.committed = index

    # --8<-- [start:maybe-commit]
    def maybe_commit(self, index: int, term: int) -> bool:
        """The leader's commit rule: commit up to ``index`` if that entry is of ``term``.

        Raft §5.4.2 and Figure 8: a leader may only count replicas for entries of its own
        term. An older entry stored on a majority can still be overwritten by a future
        leader; it becomes committed indirectly, when an entry of the current term after it
        commits (Log Matching then carries it along).
        """
        if index > self.committed and self.term_or_zero(index) == term:
            self.commit_to(index)
            return True
        return False

    # --8<-- [end:maybe-commit]

    def applied_to(self, index: int) -> None:
        """The application applied the entries up to ``index``."""
        if index == 0:
            return
        if self.committed < index or index < self.applied:
            raise AssertionError(
                f"applied({index}) is out of range [prev applied({self.applied}), "
                f"committed({self.committed})]"
            )
        self.applied = index

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the log with a snapshot from the leader (Raft §7): everything up to its
        index is committed, and the log continues after it."""
        self.committed = snapshot.metadata.index
        self.unstable.restore(snapshot)

    # --8<-- [start:up-to-date]
    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Is a log ending at (``last_index``, ``term``) at least as up-to-date as this one?

        Raft §5.4.1: "If the logs have last entries with different terms, then the log with
        the later term is more up-to-date. If the logs end with the same term, then whichever
        log is longer is more up-to-date." A voter grants its vote only to such a candidate,
        which is what keeps every committed entry in the next leader's log.
        """
        last_term = self.last_term()
        return term > last_term or (term == last_term and last_index >= self.last_index())

    # --8<-- [end:up-to-date]
