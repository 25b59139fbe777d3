"""The unstable tail of the log: entries (and a snapshot) not yet persisted.

A node learns entries before they are durable: a leader appends a proposal, a follower accepts
an AppendEntries. They wait here until the application has written them (they leave through
`kv.raft.node.Ready.entries`) and says so (`kv.raft.node.RawNode.advance` calls `stable_to`).
Until then they may still be replaced: a follower that learns of a newer leader truncates its
conflicting tail (Figure 2, AppendEntries rule 3), and that tail may be partly unstable.

``offset`` is the index of ``entries[0]``; everything below it is in `kv.raft.storage.Storage`.
A snapshot received from the leader also waits here until persisted; it replaces the whole
log, so the entries after it start at ``snapshot index + 1`` (etcd: ``raft/log_unstable.go``).
"""

from __future__ import annotations

from collections.abc import Sequence

from kv.raft.messages import Entry, Snapshot


class Unstable:
    """Entries from ``offset`` on, and possibly a snapshot, that storage does not hold yet."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.entries: list[Entry] = []
        self.snapshot: Snapshot | None = None

    def maybe_first_index(self) -> int | None:
        """The first index of the log, if an unstable snapshot decides it."""
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        """The last index of the log, if an unstable entry or snapshot decides it."""
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, index: int) -> int | None:
        """The term of entry ``index``, if this tail knows it."""
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == index:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """The application persisted the entries up to (``index``, ``term``): forget them.

        The term check matters: between handing the entries out and hearing they are
        durable, the tail may have been truncated and rewritten by a newer leader. Then the
        entry at ``index`` is a different one and is not stable yet.
        """
        if self.maybe_term(index) == term and index >= self.offset:
            del self.entries[: index + 1 - self.offset]
            self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        """The application persisted the snapshot at ``index``."""
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        """Replace everything with ``snapshot``: the log now continues after its index."""
        self.offset = snapshot.metadata.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries``, first dropping whatever is at or after ``entries[0].index``."""
        after = entries[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif after <= self.offset:
            # The new entries replace the whole tail (and some stable entries: storage
            # truncates those when it appends these).
            self.offset = after
            self.entries = list(entries)
        else:
            del self.entries[after - self.offset :]
            self.entries.extend(entries)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries [lo, hi), which must lie within this tail."""
        upper = self.offset + len(self.entries)
        if lo > hi or lo < self.offset or hi > upper:
            raise AssertionError(f"invalid unstable.slice [{lo}, {hi}) of [{self.offset}, {upper})")
        return self.entries[lo - self.offset : hi - self.offset]
