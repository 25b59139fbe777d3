"""The tree index rebuilt in bulk from stored rows, as a restart does (chapter 2), against one
built by the same puts one at a time.

`TreeIndex.rebuilt` holds a key whose one stored change is the put that created it as that
put's main revision, not as a `KeyIndex`, until something looks at the key. Nothing may tell
the two apart: compaction (`compact`) and HashKV's set of kept revisions (`keep`) must give
what the index of `KeyIndex` objects gives, without a read first, and so must reads and later
writes. Hypothesis draws the keys' put revisions and the revision asked about.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kv.mvcc.revision import Revision
from kv.mvcc.tree_index import TreeIndex

KEYS = (b"a", b"ab", b"b", b"c")

# Each key put once, at distinct main revisions 2, 3, ... in the order drawn.
key_orders = st.permutations(KEYS).flatmap(
    lambda keys: st.integers(min_value=0, max_value=len(keys)).map(lambda n: keys[:n])
)
revisions = st.integers(min_value=1, max_value=len(KEYS) + 2)


def both_indexes(keys: tuple[bytes, ...]) -> tuple[TreeIndex, TreeIndex]:
    """The index rebuilt from the rows of one put per key, and the index of those puts."""
    rows = [(main, 0, 0, key, main, 1) for main, key in enumerate(keys, start=2)]
    by_puts = TreeIndex()
    for main, key in enumerate(keys, start=2):
        by_puts.put(key, Revision(main))
    return TreeIndex.rebuilt(rows), by_puts


@given(key_orders, revisions)
def test_compacting_a_rebuilt_index_keeps_what_compacting_the_puts_keeps(
    keys: tuple[bytes, ...], at: int
) -> None:
    rebuilt, by_puts = both_indexes(keys)
    assert rebuilt.compact(at) == by_puts.compact(at)
    assert len(rebuilt) == len(by_puts)


@given(key_orders, revisions)
def test_the_revisions_a_rebuilt_index_keeps_for_hashkv_are_those_of_the_puts(
    keys: tuple[bytes, ...], at: int
) -> None:
    rebuilt, by_puts = both_indexes(keys)
    assert rebuilt.keep(at) == by_puts.keep(at)


@given(key_orders, revisions)
def test_a_rebuilt_index_reads_and_counts_as_the_puts_do(keys: tuple[bytes, ...], at: int) -> None:
    rebuilt, by_puts = both_indexes(keys)
    for key in KEYS:
        assert rebuilt.get(key, at) == by_puts.get(key, at)
    assert rebuilt.count(b"\x00", b"\x00", at) == by_puts.count(b"\x00", b"\x00", at)
    assert rebuilt.range(b"\x00", b"\x00", at) == by_puts.range(b"\x00", b"\x00", at)


@given(key_orders)
def test_a_rebuilt_index_takes_later_puts_and_deletes_as_the_puts_do(
    keys: tuple[bytes, ...],
) -> None:
    rebuilt, by_puts = both_indexes(keys)
    main = len(keys) + 2
    for index in (rebuilt, by_puts):
        for key in keys[:1]:
            index.tombstone(key, Revision(main))
        for key in keys[1:2]:
            index.put(key, Revision(main + 1))
    newest = main + 2
    assert rebuilt.range(b"\x00", b"\x00", newest) == by_puts.range(b"\x00", b"\x00", newest)
    assert rebuilt.count(b"\x00", b"\x00", newest) == by_puts.count(b"\x00", b"\x00", newest)
