"""One key's index: generations, versions, reads at a revision, and compaction.

The rules are etcd's ``mvcc/key_index.go``: a generation is one life of a key, from the put
that creates it to the tombstone that deletes it; compaction at ``at`` keeps, per key, the
revision a read at ``at`` returns and everything after it, and nothing of a life that ended at
or before ``at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kv.mvcc import KeyIndex, KeyVersion, Revision

KEY = b"k"


def index_of(*steps: int) -> KeyIndex:
    """A key index from main revisions: a positive number is a put, a negative one a delete."""
    index = KeyIndex(KEY)
    for step in steps:
        if step > 0:
            index.put(Revision(step))
        else:
            index.tombstone(Revision(-step))
    return index


def revisions_of(index: KeyIndex) -> list[list[int]]:
    """The main revisions of each generation, for compact assertions."""
    return [
        [revision.main for revision in generation.revisions] for generation in index.generations
    ]


def version_at(index: KeyIndex, at: int) -> KeyVersion:
    found = index.get(at)
    assert found is not None, f"key should exist at {at}"
    return found


# --- put, tombstone, get ---------------------------------------------------------------------


def test_a_new_key_index_has_one_empty_generation() -> None:
    index = KeyIndex(KEY)
    assert revisions_of(index) == [[]]
    assert index.is_empty()


def test_a_key_is_absent_before_its_first_put() -> None:
    assert index_of(5).get(4) is None


def test_first_put_creates_the_key_with_version_1() -> None:
    """etcd: the creating put has version 1 and create_revision = its own revision."""
    assert index_of(5).get(5) == KeyVersion(modified=Revision(5), created=Revision(5), version=1)


def test_each_put_increments_the_version() -> None:
    index = index_of(2, 4, 6)
    assert [version_at(index, at).version for at in (2, 4, 6)] == [1, 2, 3]


def test_updates_keep_the_create_revision() -> None:
    assert version_at(index_of(2, 4, 6), 6).created == Revision(2)


def test_a_read_between_puts_sees_the_last_put_at_or_before_it() -> None:
    index = index_of(2, 4, 6)
    assert version_at(index, 5) == KeyVersion(Revision(4), Revision(2), 2)


def test_a_read_after_the_last_put_sees_the_last_put() -> None:
    assert version_at(index_of(2, 4), 100).modified == Revision(4)


def test_tombstone_ends_the_generation_and_starts_an_empty_one() -> None:
    assert revisions_of(index_of(2, 4, -6)) == [[2, 4, 6], []]


def test_a_key_is_absent_at_the_revision_of_its_tombstone() -> None:
    assert index_of(2, -4).get(4) is None


def test_a_key_is_absent_after_its_tombstone() -> None:
    assert index_of(2, -4).get(10) is None


def test_a_read_before_the_tombstone_sees_the_last_put() -> None:
    assert version_at(index_of(2, 3, -4), 3) == KeyVersion(Revision(3), Revision(2), 2)


def test_delete_then_put_starts_a_new_generation_with_version_1() -> None:
    """etcd: a put after a delete re-creates the key: new create_revision, version 1."""
    index = index_of(2, 3, -4, 7)
    assert revisions_of(index) == [[2, 3, 4], [7]]
    assert version_at(index, 7) == KeyVersion(Revision(7), Revision(7), 1)


def test_a_read_between_generations_finds_no_key() -> None:
    assert index_of(2, -4, 7).get(5) is None


def test_a_read_in_an_old_generation_returns_that_generation() -> None:
    index = index_of(2, 3, -4, 7, 8)
    assert version_at(index, 3) == KeyVersion(Revision(3), Revision(2), 2)
    assert version_at(index, 8) == KeyVersion(Revision(8), Revision(7), 2)


def test_sub_revisions_of_one_request_count_as_separate_versions() -> None:
    """etcd: two puts of one key in one request are two versions under one main revision."""
    index = KeyIndex(KEY)
    index.put(Revision(5, 0))
    index.put(Revision(5, 1))
    assert version_at(index, 5) == KeyVersion(Revision(5, 1), Revision(5, 0), 2)


def test_a_put_must_come_after_the_last_revision() -> None:
    index = index_of(5)
    with pytest.raises(ValueError):
        index.put(Revision(5))
    with pytest.raises(ValueError):
        index.put(Revision(4))


def test_a_tombstone_of_a_key_that_never_existed_is_refused() -> None:
    with pytest.raises(LookupError):
        KeyIndex(KEY).tombstone(Revision(3))


def test_a_tombstone_of_a_deleted_key_is_refused() -> None:
    with pytest.raises(LookupError):
        index_of(2, -3).tombstone(Revision(4))


# --- compaction ------------------------------------------------------------------------------


def compacted(index: KeyIndex, at: int) -> set[int]:
    """Compact ``index`` at ``at``; return the main revisions it keeps."""
    keep: set[Revision] = set()
    index.compact(at, keep)
    return {revision.main for revision in keep}


def test_compaction_keeps_the_revision_live_at_the_compaction_revision() -> None:
    index = index_of(2, 4, 6)
    assert compacted(index, 5) == {4}
    assert revisions_of(index) == [[4, 6]]


def test_compaction_at_a_put_keeps_that_put() -> None:
    index = index_of(2, 4, 6)
    assert compacted(index, 4) == {4}
    assert revisions_of(index) == [[4, 6]]


def test_compaction_leaves_revisions_after_the_compaction_revision_alone() -> None:
    index = index_of(2, 4, 6, 8)
    compacted(index, 4)
    assert revisions_of(index)[0][1:] == [6, 8]


def test_compaction_before_the_first_put_changes_nothing() -> None:
    index = index_of(5, 7)
    assert compacted(index, 3) == set()
    assert revisions_of(index) == [[5, 7]]


def test_compaction_keeps_the_versions_of_the_remaining_revisions() -> None:
    """Versions are counted, not derived from what is left (etcd: generation.ver)."""
    index = index_of(2, 4, 6)
    compacted(index, 5)
    assert [version_at(index, at).version for at in (5, 6)] == [2, 3]


def test_create_revision_survives_compaction_of_the_creating_put() -> None:
    """etcd keeps generation.created apart from revs, so create_revision outlives compaction."""
    index = index_of(2, 4)
    compacted(index, 4)
    assert version_at(index, 4).created == Revision(2)


def test_a_put_after_compaction_continues_the_version() -> None:
    index = index_of(2, 4)
    compacted(index, 4)
    index.put(Revision(6))
    assert version_at(index, 6) == KeyVersion(Revision(6), Revision(2), 3)


def test_compaction_drops_a_generation_that_ended_before_the_compaction_revision() -> None:
    index = index_of(2, -3, 5)
    assert compacted(index, 4) == set()
    assert revisions_of(index) == [[5]]


def test_compaction_at_a_tombstone_keeps_the_tombstone_etcd_18089() -> None:
    """etcd PR #18274: a watch from the compaction revision must still see the delete there."""
    index = index_of(2, -3, 5)
    assert compacted(index, 3) == {3}
    assert revisions_of(index) == [[3], [5]]


def test_compaction_at_a_delete_and_re_create_in_one_txn_keeps_both() -> None:
    """A txn deleting and re-creating the key in the compaction revision: the tombstone stays
    for watches and the new value stays for reads (etcd PR #22377)."""
    index = index_of(2)
    index.tombstone(Revision(5, 0))
    index.put(Revision(5, 1))
    kept: set[Revision] = set()
    index.compact(5, kept)
    assert kept == {Revision(5, 0), Revision(5, 1)}
    assert index.get(5) == KeyVersion(Revision(5, 1), Revision(5, 1), 1)


def test_keep_leaves_out_a_tombstone_at_the_revision_so_hashkv_does_not_move() -> None:
    """etcd kept keyIndex.keep as before PR #18274 so that HashKV agrees across versions."""
    kept: set[Revision] = set()
    index_of(2, -3, 5).keep(3, kept)
    assert kept == set()


def test_a_restored_lone_tombstone_ends_a_life_of_unknown_creation() -> None:
    """etcd PR #19188: all that compaction left of the key is its tombstone."""
    index = KeyIndex(KEY)
    index.restore_tombstone(Revision(3))
    assert revisions_of(index) == [[3], []]
    assert index.get(3) is None
    assert compacted(index, 4) == set()
    assert index.is_empty()


def test_compaction_keeps_a_generation_whose_tombstone_is_after_the_compaction_revision() -> None:
    index = index_of(2, 3, -6)
    assert compacted(index, 4) == {3}
    assert revisions_of(index) == [[3, 6], []]


def test_a_deleted_key_is_empty_after_compaction_past_its_tombstone() -> None:
    index = index_of(2, -3)
    assert compacted(index, 4) == set()
    assert index.is_empty()


def test_a_deleted_key_is_not_empty_after_compaction_at_its_tombstone() -> None:
    index = index_of(2, -3)
    compacted(index, 3)
    assert not index.is_empty()


def test_a_live_key_is_not_empty_after_compaction() -> None:
    index = index_of(2)
    compacted(index, 10)
    assert not index.is_empty()


def test_a_deleted_key_is_absent_after_compaction() -> None:
    index = index_of(2, -3)
    compacted(index, 3)
    assert index.get(3) is None


# --- compaction, as properties over random histories -----------------------------------------


@dataclass(frozen=True)
class History:
    """A random life story of one key: puts and deletes at increasing main revisions."""

    steps: tuple[int, ...]  # positive: put at that revision; negative: delete
    last: int  # the last main revision used


@st.composite
def histories(draw: st.DrawFn) -> History:
    steps: list[int] = []
    revision, alive = 1, False
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        revision += draw(st.integers(min_value=1, max_value=3))
        delete = alive and draw(st.booleans())
        steps.append(-revision if delete else revision)
        alive = not delete
    return History(tuple(steps), revision)


def tombstone_at(history: History, at: int) -> set[Revision]:
    """The tombstone written at ``at``, if the history deleted the key there."""
    return {Revision(at)} if -at in history.steps else set()


@given(histories(), st.data())
def test_keep_adds_what_compact_keeps_but_a_tombstone_at_the_revision(
    history: History, data: st.DataObject
) -> None:
    """etcd's keyIndex.keep (used by HashKV) agrees with keyIndex.compact, bar the tombstone
    at the compaction revision that compact keeps since etcd PR #18274."""
    at = data.draw(st.integers(min_value=0, max_value=history.last + 1))
    index = index_of(*history.steps)
    kept_by_keep: set[Revision] = set()
    index.keep(at, kept_by_keep)
    kept_by_compact: set[Revision] = set()
    index.compact(at, kept_by_compact)
    assert kept_by_keep == kept_by_compact - tombstone_at(history, at)


@given(histories(), st.data())
def test_keep_changes_nothing(history: History, data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=history.last + 1))
    index = index_of(*history.steps)
    before = revisions_of(index)
    index.keep(at, set())
    assert revisions_of(index) == before


@given(histories(), st.data())
def test_compaction_never_changes_a_read_at_or_after_the_compaction_revision(
    history: History, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=history.last + 1))
    index = index_of(*history.steps)
    before = [index.get(read) for read in range(at, history.last + 2)]
    index.compact(at, set())
    assert [index.get(read) for read in range(at, history.last + 2)] == before


@given(histories(), st.data())
def test_compaction_keeps_only_the_live_revision_and_a_tombstone_at_the_compaction_revision(
    history: History, data: st.DataObject
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=history.last + 1))
    index = index_of(*history.steps)
    live = index.get(at)
    index.compact(at, set())
    remaining = {
        r for generation in index.generations for r in generation.revisions if r.main <= at
    }
    live_revision = {live.modified} if live is not None else set()
    assert remaining == live_revision | tombstone_at(history, at)
