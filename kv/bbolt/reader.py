"""Reading a bbolt file: pick the meta, walk the buckets, check the pages (chapter 2).

`BoltFile` reads from any buffer (bytes, or a memory map of a large file: `open_file`). It
never writes. What it can tell:

* `BoltFile.buckets` and `Bucket.items`: every bucket and key in key order, as bbolt's
  cursors give them (``etcdctl snapshot status`` hashes exactly this walk);
* `BoltFile.size`: the file's size as bbolt's ``tx.Size()`` gives it, its high water mark;
* `BoltFile.check`: bbolt's ``tx.Check()``: each page used once, inside the file, of the
  right type, and every page either in the tree or free.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kv.bbolt.page import (
    BUCKET_HEADER,
    NO_FREELIST,
    PAGE_HEADER,
    PAGE_SIZE,
    BoltError,
    Buffer,
    LeafElement,
    Meta,
    PageHeader,
    PageType,
    unpack_branch,
    unpack_freelist,
    unpack_leaf,
)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket of a `BoltFile`: a tree of pages, or one page held inline in its parent.

    ``root`` is the id of the tree's root page; 0 means inline: ``inline`` then holds the
    bucket's only page (a leaf), stored inside the parent's value (bbolt does this for small
    buckets without sub-buckets, to spare a page per bucket).
    """

    file: BoltFile
    root: int
    sequence: int = 0
    inline: bytes = b""

    def items(self) -> Iterator[tuple[bytes, bytes | Bucket]]:
        """Every key in key order, with its value or, for a sub-bucket, the `Bucket`."""
        for element in self._elements():
            if element.is_bucket:
                yield element.key, self.file.bucket_of(element.value)
            else:
                yield element.key, element.value

    def get(self, key: bytes) -> bytes | Bucket | None:
        """The value (or sub-bucket) at ``key``, None if absent (a scan: for small buckets)."""
        return next((value for found, value in self.items() if found == key), None)

    def _elements(self) -> Iterator[LeafElement]:
        if self.root == 0:
            header = PageHeader.unpack(self.inline)
            yield from unpack_leaf(self.inline, 0, header.count)
        else:
            yield from self.file.leaf_elements(self.root)


class BoltFile:
    """A bbolt database held in a buffer. See the package docstring for the layout."""

    def __init__(self, data: Buffer) -> None:
        """Read the metas from ``data`` and pick the newest valid one.

        Raises:
            BoltError: neither meta page is valid (bbolt's message for the first one).
        """
        self.data = data
        self.meta = _newest_meta(data)
        self.page_size = self.meta.page_size

    @property
    def size(self) -> int:
        """The database's size in bytes: ``high water mark x page size`` (``tx.Size()``)."""
        return self.meta.high_water * self.page_size

    @property
    def root(self) -> Bucket:
        """The root bucket; its keys are the top-level buckets' names."""
        return Bucket(self, self.meta.root, self.meta.sequence)

    def buckets(self) -> Iterator[tuple[bytes, Bucket]]:
        """The top-level buckets, by name."""
        for name, value in self.root.items():
            if not isinstance(value, Bucket):
                raise BoltError(f"root key {name!r} is not a bucket")
            yield name, value

    def bucket(self, name: bytes) -> Bucket | None:
        """The top-level bucket ``name``, None if there is none."""
        found = self.root.get(name)
        return found if isinstance(found, Bucket) else None

    def bucket_of(self, value: bytes) -> Bucket:
        """The `Bucket` that a leaf element's value (a bucket header) describes."""
        root, sequence = BUCKET_HEADER.unpack_from(value)
        return Bucket(self, root, sequence, value[BUCKET_HEADER.size :] if root == 0 else b"")

    def page(self, page_id: int) -> PageHeader:
        """The header of page ``page_id``."""
        if page_id >= self.meta.high_water:
            raise BoltError(f"page {page_id}: out of bounds: {self.meta.high_water}")
        if (page_id + 1) * self.page_size > len(self.data):
            raise BoltError(f"page {page_id}: past the end of the file")
        return PageHeader.unpack(self.data, page_id * self.page_size)

    def leaf_elements(self, page_id: int) -> Iterator[LeafElement]:
        """The elements of every leaf under page ``page_id``, in key order (depth first)."""
        header = self.page(page_id)
        offset = page_id * self.page_size
        if header.type == PageType.LEAF:
            yield from unpack_leaf(self.data, offset, header.count)
        elif header.type == PageType.BRANCH:
            for _, child in unpack_branch(self.data, offset, header.count):
                yield from self.leaf_elements(child)
        else:
            raise BoltError(f"page {page_id}: invalid type: {header.type}")

    def free_pages(self) -> list[int]:
        """The free page ids: the freelist page's, or (no freelist written) every page below
        the high water mark that the tree does not use, as bbolt finds them on open."""
        if self.meta.freelist == NO_FREELIST:
            used = set(self._reachable())
            return [page for page in range(2, self.meta.high_water) if page not in used]
        header = self.page(self.meta.freelist)
        return unpack_freelist(self.data, self.meta.freelist * self.page_size, header.count)

    def check(self) -> list[str]:
        """bbolt's ``tx.Check()``: a list of problems, empty for a consistent file."""
        problems: list[str] = []
        seen: dict[int, int] = {}
        try:
            for page_id in self._reachable():
                seen[page_id] = seen.get(page_id, 0) + 1
            free = set(self.free_pages())
        except BoltError as error:
            return [str(error)]
        problems += [f"page {page}: multiple references" for page, n in seen.items() if n > 1]
        problems += [f"page {page}: reachable freed" for page in sorted(free & seen.keys())]
        problems += [
            f"page {page}: unreachable unfreed"
            for page in range(self.meta.high_water)
            if page not in seen and page not in free
        ]
        return problems

    def _reachable(self) -> Iterator[int]:
        """Every page the file uses: metas, freelist, the trees' pages with their overflow."""
        yield 0
        yield 1
        if self.meta.freelist != NO_FREELIST:
            yield from self._span(self.meta.freelist)
        yield from self._tree_pages(self.meta.root)

    def _span(self, page_id: int) -> range:
        return range(page_id, page_id + 1 + self.page(page_id).overflow)

    def _tree_pages(self, page_id: int) -> Iterator[int]:
        yield from self._span(page_id)
        header = self.page(page_id)
        offset = page_id * self.page_size
        if header.type == PageType.BRANCH:
            for _, child in unpack_branch(self.data, offset, header.count):
                yield from self._tree_pages(child)
            return
        if header.type != PageType.LEAF:
            raise BoltError(f"page {page_id}: invalid type: {header.type}")
        for element in unpack_leaf(self.data, offset, header.count):
            if element.is_bucket:
                yield from self._bucket_pages(self.bucket_of(element.value))

    def _bucket_pages(self, bucket: Bucket) -> Iterator[int]:
        if bucket.root != 0:
            yield from self._tree_pages(bucket.root)
            return
        for element in bucket._elements():  # an inline bucket's sub-buckets (none in practice)
            if element.is_bucket:
                yield from self._bucket_pages(self.bucket_of(element.value))


def _newest_meta(data: Buffer) -> Meta:
    """The valid meta with the higher txid; bbolt's error for meta 0 if neither is valid."""
    if len(data) < PAGE_HEADER.size * 2:
        raise BoltError("file size too small")
    metas: list[Meta] = []
    first_error: BoltError | None = None
    page_size = PAGE_SIZE  # where meta 1 is if meta 0 cannot say (bbolt: os.Getpagesize())
    for page_id in (0, 1):
        try:
            meta = Meta.unpack(data, page_id * page_size + PAGE_HEADER.size)
        except (BoltError, struct.error) as error:
            first_error = first_error or BoltError(str(error))
            continue
        metas.append(meta)
        page_size = meta.page_size  # meta 1 sits one page (of meta 0's size) after meta 0
    if not metas:
        raise first_error or BoltError("invalid database")
    return max(metas, key=lambda meta: meta.txid)


def open_file(path: Path) -> BoltFile:
    """A `BoltFile` over a read-only memory map of ``path`` (a snapshot may be gigabytes)."""
    with path.open("rb") as file:
        if path.stat().st_size == 0:
            raise BoltError("file size too small")
        data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    return BoltFile(data)
