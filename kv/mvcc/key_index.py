"""The key index: every revision at which one key changed, grouped into generations (chapter 1).

A key's history is a list of *generations*. A generation is one life of the key: it starts
with the put that creates the key and ends with the delete that writes its tombstone. The last
generation is the key's current life; it is empty when the key is deleted right now. Picture
for a key put at revisions 2 and 4, deleted at 6, and put again at 9 (etcd draws the same picture
in ``mvcc/key_index.go``)::

    generations[0]: 2.0, 4.0, 6.0(tombstone)    version 1, 2 -- then deleted
    generations[1]: 9.0                          version 1 again: a new life

Asking "what was this key at revision r?" means finding the generation alive at ``r`` and, in
it, the last revision at or before ``r``. Compaction cuts every generation and revision that no
read at or after the compaction revision can reach.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from kv.mvcc.revision import Revision

NO_REVISION = Revision(0)


def _main(revision: Revision) -> int:
    return revision.main


@dataclass(slots=True)
class Generation:
    """One life of a key: its revisions from creation to (possibly) its tombstone."""

    revisions: list[Revision] = field(default_factory=list)
    # Puts counted in this life, tombstone included. Kept apart from len(revisions), and the
    # creating revision apart from revisions[0], because compaction drops old revisions but
    # must change neither the versions nor the create_revision of those that remain.
    version: int = 0
    created: Revision = NO_REVISION

    def is_empty(self) -> bool:
        return not self.revisions

    def last_at_or_before(self, main: int) -> int:
        """Index of the last revision whose main revision is <= ``main``, or -1."""
        return bisect_right(self.revisions, main, key=_main) - 1

    def version_at(self, index: int) -> int:
        """The version the key had at ``revisions[index]``."""
        return self.version - (len(self.revisions) - index - 1)


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """What the index knows of a key at one revision: where its value is stored, and its version."""

    modified: Revision
    created: Revision
    version: int


# --8<-- [start:key-index]
@dataclass(slots=True)
class KeyIndex:
    """All the revisions at which ``key`` changed, as a list of generations."""

    key: bytes
    generations: list[Generation] = field(default_factory=lambda: [Generation()])

    def put(self, revision: Revision) -> None:
        """Record a put: the revision joins the current generation (starting it if empty)."""
        current = self.generations[-1]
        if current.is_empty():
            current.created = revision
        elif revision <= current.revisions[-1]:
            raise ValueError(f"revision {revision} is not after {current.revisions[-1]}")
        current.revisions.append(revision)
        current.version += 1

    def restore(self, revision: Revision, created: Revision, version: int) -> None:
        """Record a put read back from stored history (chapter 2).

        Unlike `put`, the creation and version come from the stored key-value: compaction may
        have dropped the revisions before this one, so they cannot be counted again.
        """
        if self.generations[-1].is_empty():
            self.generations[-1] = Generation([revision], version, created)
        else:
            self.put(revision)

    def restore_tombstone(self, revision: Revision) -> None:
        """Record a delete read back from stored history (chapter 2).

        A tombstone kept by a compaction at its revision can be the key's only stored change:
        its creation is compacted and unknown, so the ended life starts at the tombstone, as
        in etcd's ``restoreTombstone`` (etcd PR #19188).
        """
        if self.generations[-1].is_empty():
            self.generations[-1] = Generation([revision], 1, NO_REVISION)
            self.generations.append(Generation())
        else:
            self.tombstone(revision)

    def tombstone(self, revision: Revision) -> None:
        """Record a delete: a tombstone ends the current generation; an empty one begins."""
        if self.generations[-1].is_empty():
            raise LookupError(f"cannot delete {self.key!r}: it does not exist")
        self.put(revision)
        self.generations.append(Generation())

    def get(self, at: int) -> KeyVersion | None:
        """The key as it was at main revision ``at``, or None if it did not exist then."""
        generation = self._generation_alive_at(at)
        if generation is None:
            return None
        index = generation.last_at_or_before(at)
        return KeyVersion(
            modified=generation.revisions[index],
            created=generation.created,
            version=generation.version_at(index),
        )

    def _generation_alive_at(self, at: int) -> Generation | None:
        # Walk back from the current life: the first generation that began at or before `at`
        # is the candidate; if it ended (tombstone) at or before `at`, the key was deleted then.
        last = len(self.generations) - 1
        for position in range(last, -1, -1):
            generation = self.generations[position]
            if generation.is_empty() or generation.revisions[0].main > at:
                continue
            ended = position != last and generation.revisions[-1].main <= at
            return None if ended else generation
        return None

    # --8<-- [end:key-index]

    # --8<-- [start:compact]
    def compact(self, at: int, keep: set[Revision]) -> None:
        """Forget what no read or watch from revision ``at`` on can see; add what stays to ``keep``.

        Whole generations that ended before ``at`` go. In the generation alive at ``at``, or
        ended exactly at ``at``, the revision live at ``at`` stays and the ones before it go.
        A tombstone at exactly ``at`` stays (etcd #18089, fixed in etcd PR #18274: a watch
        from ``at`` must see that delete), and so does the next generation's revision live at
        ``at`` if a txn deleted and re-created the key in revision ``at`` (etcd PR #22377).
        Everything after ``at`` is untouched.
        """
        first = self._first_generation_not_ended_before(at)
        for position, index in self._live_at(first, at):
            generation = self.generations[position]
            keep.add(generation.revisions[index])
            del generation.revisions[:index]
        del self.generations[:first]

    def keep(self, at: int, keep: set[Revision]) -> None:
        """Add to ``keep`` the revision a read at ``at`` returns, changing nothing (for HashKV).

        This is the set `compact` kept before etcd PR #18274: no tombstone at ``at``. etcd left
        ``keep`` so on purpose, so that HashKV agrees across versions (etcd PR #18369).
        """
        found = self.get(at)
        if found is not None:
            keep.add(found.modified)

    def _first_generation_not_ended_before(self, at: int) -> int:
        # The first generation that is alive at `at`, ended exactly at `at`, or is born after
        # it (the current, possibly empty, generation at the latest). etcd: `tomb >= atRev`.
        position = 0
        while (
            position < len(self.generations) - 1
            and self.generations[position].revisions[-1].main < at
        ):
            position += 1
        return position

    def _live_at(self, first: int, at: int) -> Iterator[tuple[int, int]]:
        # (generation, index) of each revision a read or a watch at `at` needs: in `first`, the
        # last revision at or before `at`; while that is a tombstone (necessarily at `at`), the
        # same in the next generation, which a txn re-created in revision `at`.
        last = len(self.generations) - 1
        for position in range(first, last + 1):
            generation = self.generations[position]
            index = generation.last_at_or_before(at)
            if index < 0:
                return
            ended_at_at = position != last and index == len(generation.revisions) - 1
            yield position, index
            if not ended_at_at:
                return

    # --8<-- [end:compact]

    def is_empty(self) -> bool:
        """True when compaction has left nothing: the key can leave the index."""
        return len(self.generations) == 1 and self.generations[0].is_empty()

    def is_deleted(self) -> bool:
        """True when the key lived and is deleted now: a tombstone ended its last life."""
        return len(self.generations) > 1 and self.generations[-1].is_empty()
