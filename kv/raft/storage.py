"""The storage contract the Raft core reads its stable state through, and an in-memory one.

The core never writes storage. It hands the application what to persist in each
`kv.raft.node.Ready` (entries, hard state, a snapshot); the application writes it (to a
write-ahead log, or to a `MemoryStorage` in tests and in the simulator) and then reads go
through this `Storage` protocol: the core asks it for entries and terms it no longer keeps in
memory. That is etcd's split (``raft/storage.go``): the library implements Raft, "the network
and disk are the user's".

Indexes: storage holds a snapshot (possibly empty, index 0) and the entries after it. The
entry at the snapshot's index is gone, but its term is still known (it is the snapshot's
term): the consistency check of the next AppendEntries needs it (Figure 2, prevLogTerm). So
`Storage.term` answers for ``first_index() - 1`` too, and `Storage.entries` raises
`CompactedError` for anything at or below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kv.raft.errors import CompactedError, SnapshotOutOfDateError, UnavailableError
from kv.raft.messages import ConfState, Entry, HardState, Snapshot, SnapshotMetadata

#: No byte limit for `Storage.entries`.
NO_LIMIT = 2**64 - 1


class Storage(Protocol):
    """What the core reads from stable storage (etcd's ``raft.Storage``)."""

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the configuration (at the latest snapshot)."""
        ...

    def entries(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> list[Entry]:
        """Entries [lo, hi), cut after ``max_size`` bytes but never empty.

        Raises:
            CompactedError: ``lo`` is at or below the snapshot.
            UnavailableError: the storage holds no entries at all.
        """
        ...

    def term(self, index: int) -> int:
        """The term of entry ``index``, for ``first_index() - 1 <= index <= last_index()``.

        Raises:
            CompactedError: below that range.
            UnavailableError: above it.
        """
        ...

    def first_index(self) -> int:
        """The index of the first entry that may be read (the snapshot's index + 1)."""
        ...

    def last_index(self) -> int:
        """The index of the last entry (the snapshot's index when there are none)."""
        ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot (for a leader to send to a follower that is far behind).

        Raises:
            SnapshotTemporarilyUnavailableError: one is being made; ask again later.
        """
        ...


def limit_size(entries: Sequence[Entry], max_size: int) -> list[Entry]:
    """The longest prefix of ``entries`` within ``max_size`` bytes, but at least one entry.

    At least one, or a single large entry would never be sent (etcd: ``limitSize``).
    """
    if not entries:
        return []
    total = entries[0].size()
    count = 1
    while count < len(entries):
        total += entries[count].size()
        if total > max_size:
            break
        count += 1
    return list(entries[:count])


class MemoryStorage:
    """A `Storage` kept in a list: for tests and the simulator (etcd's ``MemoryStorage``).

    ``_entries[0]`` is a dummy that stands for the snapshot: its index and term are the
    snapshot's. The application's half is `append`, `set_hard_state`, `apply_snapshot`,
    `create_snapshot` and `compact`.
    """

    def __init__(self, conf_state: ConfState | None = None) -> None:
        """Empty storage; ``conf_state`` is the initial configuration (etcd's tests bootstrap
        a cluster the same way: with a snapshot at index 0 that names the members)."""
        self.hard_state = HardState()
        self._snapshot = Snapshot(metadata=SnapshotMetadata(conf_state=conf_state or ConfState()))
        self._entries: list[Entry] = [Entry(term=0, index=0)]

    @classmethod
    def with_members(cls, voters: Sequence[int], learners: Sequence[int] = ()) -> MemoryStorage:
        """Storage for a new cluster of these voters and learners."""
        return cls(ConfState(voters=tuple(voters), learners=tuple(learners)))

    # -- the Storage protocol ------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> list[Entry]:
        offset = self._entries[0].index
        if lo <= offset:
            raise CompactedError(f"index {lo} <= {offset}")
        if hi > self.last_index() + 1:
            raise AssertionError(f"entries [{lo}, {hi}) beyond the last index {self.last_index()}")
        if len(self._entries) == 1:
            raise UnavailableError(f"no entries after index {offset}")
        return limit_size(self._entries[lo - offset : hi - offset], max_size)

    def term(self, index: int) -> int:
        offset = self._entries[0].index
        if index < offset:
            raise CompactedError(f"index {index} < {offset}")
        if index - offset >= len(self._entries):
            raise UnavailableError(f"index {index} > {self.last_index()}")
        return self._entries[index - offset].term

    def first_index(self) -> int:
        return self._entries[0].index + 1

    def last_index(self) -> int:
        return self._entries[0].index + len(self._entries) - 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- the application's half -----------------------------------------------------------

    def set_hard_state(self, hard_state: HardState) -> None:
        self.hard_state = hard_state

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries, replacing any existing entries from ``entries[0].index`` on.

        Entries at or below the snapshot are skipped (they are already part of it).
        """
        if not entries:
            return
        first = self.first_index()
        last = entries[0].index + len(entries) - 1
        if last < first:
            return
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._entries[0].index
        if offset > len(self._entries):
            raise AssertionError(
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]"
            )
        del self._entries[offset:]
        self._entries.extend(entries)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace everything with ``snapshot`` (a follower installing the leader's, Raft §7)."""
        if self._snapshot.metadata.index >= snapshot.metadata.index:
            raise SnapshotOutOfDateError()
        self._snapshot = snapshot
        self._entries = [Entry(term=snapshot.metadata.term, index=snapshot.metadata.index)]

    # --8<-- [start:compaction]
    def create_snapshot(
        self, index: int, conf_state: ConfState | None = None, data: bytes = b""
    ) -> Snapshot:
        """Record a snapshot of the state machine as of ``index`` (an applied index)."""
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError()
        if index > self.last_index():
            raise AssertionError(f"snapshot {index} is out of bound {self.last_index()}")
        metadata = SnapshotMetadata(
            conf_state=conf_state if conf_state is not None else self._snapshot.metadata.conf_state,
            index=index,
            term=self.term(index),
        )
        self._snapshot = Snapshot(data=data, metadata=metadata)
        return self._snapshot

    def compact(self, index: int) -> None:
        """Discard the entries up to and including ``index`` (a snapshot must cover them)."""
        offset = self._entries[0].index
        if index <= offset:
            raise CompactedError(f"index {index} <= {offset}")
        if index > self.last_index():
            raise AssertionError(f"compact {index} is out of bound {self.last_index()}")
        dummy = Entry(term=self._entries[index - offset].term, index=index)
        self._entries = [dummy, *self._entries[index - offset + 1 :]]

    # --8<-- [end:compaction]
