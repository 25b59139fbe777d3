"""Writing a bbolt file in one pass, from sorted buckets (chapter 2).

bbolt itself grows a file one transaction at a time: it splits full pages, rebalances
half-empty ones and keeps a freelist of the pages old transactions used. A snapshot needs
none of that: its whole content is known, in key order, before the first byte is written.
So `write` bulk-loads, bottom up, as a B+tree is loaded from sorted data:

1. each bucket's keys fill leaf pages, one after another, as full as a page allows (a
   value bigger than a page gets a page of its own, with overflow pages after it);
2. the first key of each leaf and its page id fill the branch pages of the level above, and
   so on until one page remains: the bucket's root;
3. a sub-bucket is written before the leaf that names it, since that leaf holds its root's
   page id. A small bucket without sub-buckets is stored inline instead, inside its
   parent's leaf, exactly when bbolt would (its page at most a quarter of a page);
4. last come an empty freelist (every page is in use) and the two meta pages at the front.

The result is a file bbolt (and so etcd and etcdctl) opens like any other: the meta pages
are those ``tx.WriteTo`` writes for a snapshot (meta 1 one transaction older than meta 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from kv.bbolt.page import (
    BRANCH_ELEMENT,
    BUCKET_HEADER,
    PAGE_HEADER,
    PAGE_SIZE,
    LeafElement,
    Meta,
    PageHeader,
    PageType,
    pack_branch,
    pack_freelist,
    pack_leaf,
    pad,
)


@dataclass(frozen=True, slots=True)
class NewBucket:
    """A bucket to write: its keys in strictly increasing order, each with a value or a
    sub-bucket. ``items`` may be a generator: it is read once, as the pages are written."""

    items: Iterable[tuple[bytes, bytes | NewBucket]] = ()
    sequence: int = 0


#: The transaction id the written file's meta 0 carries (meta 1 carries one less).
DEFAULT_TXID = 2


def write(
    file: BinaryIO,
    buckets: Iterable[tuple[bytes, NewBucket]],
    *,
    page_size: int = PAGE_SIZE,
    txid: int = DEFAULT_TXID,
) -> int:
    """Write a bbolt database holding ``buckets`` (top-level, by name, sorted) to ``file``.

    ``file`` must be seekable (the meta pages are written last, at the front). Returns the
    database's size in bytes, a whole number of pages.

    Raises:
        ValueError: keys are not strictly increasing, or a key is empty (bbolt refuses both).
    """
    pages = _Pages(file, page_size)
    root = _finish(pages, _fill(pages, NewBucket(buckets)))  # the root bucket is never inline
    freelist = pages.put(pack_freelist(pages.next_id, []))
    for meta_id, meta_txid in ((0, txid), (1, txid - 1)):
        meta = Meta(page_size, root, freelist, pages.next_id, meta_txid)
        page = PageHeader(meta_id, PageType.META, 0).pack() + meta.pack()
        file.seek(meta_id * page_size)
        file.write(page + bytes(page_size - len(page)))
    file.seek(pages.next_id * page_size)
    file.truncate()
    return pages.next_id * page_size


@dataclass(slots=True)
class _Pages:
    """Pages written in id order from page 2 on (0 and 1 are the metas, written last)."""

    file: BinaryIO
    page_size: int
    next_id: int = 2

    def put(self, page: bytes) -> int:
        """Write a packed page (its header's id is ``next_id``) and return its id."""
        page_id = self.next_id
        padded, overflow = pad(page, self.page_size)
        self.file.seek(page_id * self.page_size)
        self.file.write(padded)
        self.next_id += 1 + overflow
        return page_id

    def leaf(self, elements: list[LeafElement]) -> int:
        return self.put(pack_leaf(self.next_id, elements))

    def branches(self, children: list[tuple[bytes, int]]) -> int:
        """Stack branch levels over ``children`` (first key, page id) until one root remains."""
        while len(children) > 1:
            level: list[tuple[bytes, int]] = []
            group: list[tuple[bytes, int]] = []
            size = PAGE_HEADER.size
            for key, child in children:
                grown = size + BRANCH_ELEMENT.size + len(key)
                if group and grown > self.page_size:
                    level.append((group[0][0], self.put(pack_branch(self.next_id, group))))
                    group, grown = [], PAGE_HEADER.size + BRANCH_ELEMENT.size + len(key)
                group.append((key, child))
                size = grown
            level.append((group[0][0], self.put(pack_branch(self.next_id, group))))
            children = level
        return children[0][1]


@dataclass(slots=True)
class _Leaf:
    """The leaf page being filled, and the pages filled before it (first key, page id)."""

    elements: list[LeafElement] = field(default_factory=list)
    size: int = PAGE_HEADER.size
    has_buckets: bool = False
    written: list[tuple[bytes, int]] = field(default_factory=list)


def _bucket_value(pages: _Pages, bucket: NewBucket) -> bytes:
    """The bytes a leaf stores for a sub-bucket: its header, then its page if inline."""
    leaf = _fill(pages, bucket)
    if not leaf.written and not leaf.has_buckets and leaf.size <= pages.page_size // 4:
        # bbolt: Bucket.inlineable, maxInlineBucketSize. The inline page's id is 0.
        return BUCKET_HEADER.pack(0, bucket.sequence) + pack_leaf(0, leaf.elements)
    return BUCKET_HEADER.pack(_finish(pages, leaf), bucket.sequence)


def _fill(pages: _Pages, bucket: NewBucket) -> _Leaf:
    """Write ``bucket``'s full leaves; return the last, still open, with what was written."""
    leaf = _Leaf()
    previous: bytes | None = None
    for key, value in bucket.items:
        if not key:
            raise ValueError("bbolt keys cannot be empty")
        if previous is not None and key <= previous:
            raise ValueError(f"keys out of order: {key!r} after {previous!r}")
        previous = key
        if isinstance(value, NewBucket):
            element = LeafElement(key, _bucket_value(pages, value), is_bucket=True)
            leaf.has_buckets = True
        else:
            element = LeafElement(key, value)
        if leaf.elements and leaf.size + element.size > pages.page_size:
            leaf.written.append((leaf.elements[0].key, pages.leaf(leaf.elements)))
            leaf.elements, leaf.size = [], PAGE_HEADER.size
        leaf.elements.append(element)
        leaf.size += element.size
    return leaf


def _finish(pages: _Pages, leaf: _Leaf) -> int:
    """Write the open leaf (an empty bucket has one empty leaf) and the branches above."""
    if leaf.elements or not leaf.written:
        first = leaf.elements[0].key if leaf.elements else b""
        leaf.written.append((first, pages.leaf(leaf.elements)))
    return pages.branches(leaf.written)
