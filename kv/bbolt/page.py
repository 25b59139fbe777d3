"""bbolt's on-disk records: page headers, meta pages, leaf and branch elements, the freelist.

Introduced in chapter 2 (snapshot files). Everything here is a pure function from values to
bytes and back; `kv.bbolt.reader` and `kv.bbolt.writer` put the records together into a file.
The package docstring (`kv.bbolt`) draws the layout. The names and numbers are bbolt's
(``go.etcd.io/bbolt``: ``page.go``, ``db.go``, ``bucket.go``), on a little-endian machine, which
is what every etcd file in practice is: bbolt writes its structs as they sit in memory.
"""

from __future__ import annotations

import enum
import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

#: What a record is read from: the file's bytes, or a memory map of it.
Buffer: TypeAlias = bytes | bytearray | memoryview | mmap.mmap

#: The page size etcd's files use (bbolt takes the OS page size, 4096 on Linux/amd64).
PAGE_SIZE = 4096
#: bbolt's magic number and file format version, the first two fields of a meta page.
MAGIC = 0xED0CDAED
VERSION = 2
#: ``meta.freelist`` when the freelist is not written to the file (etcd 3.4 opens bbolt with
#: ``NoFreelistSync``: the free pages are found again by walking the tree on open).
NO_FREELIST = 2**64 - 1
#: A page header's ``count`` is a uint16: a freelist with more ids stores this, then the real
#: count as the first uint64 of the page body.
FREELIST_OVERFLOW_COUNT = 0xFFFF

# page.go: id uint64, flags uint16, count uint16, overflow uint32.
PAGE_HEADER = struct.Struct("<QHHI")
# page.go leafPageElement: flags, pos, ksize, vsize (pos counts from the element itself).
LEAF_ELEMENT = struct.Struct("<IIII")
# page.go branchPageElement: pos, ksize, pgid.
BRANCH_ELEMENT = struct.Struct("<IIQ")
# bucket.go bucket: root pgid (0 = inline), sequence.
BUCKET_HEADER = struct.Struct("<QQ")
# db.go meta: magic, version, pageSize, flags, root bucket (root, sequence), freelist, pgid,
# txid, checksum.
META = struct.Struct("<IIIIQQQQQQ")
#: The meta fields the checksum covers: everything before the checksum itself.
META_CHECKED_SIZE = META.size - 8

#: A leaf element's flag saying its value is a bucket (a bucket header, maybe an inline page).
BUCKET_LEAF_FLAG = 0x01


class PageType(enum.IntEnum):
    """What a page holds: its header's ``flags`` (bbolt: ``branchPageFlag`` and the others)."""

    BRANCH = 0x01
    LEAF = 0x02
    META = 0x04
    FREELIST = 0x10


class BoltError(Exception):
    """The bytes are not a bbolt file, or not a consistent one; the message says where."""


@dataclass(frozen=True, slots=True)
class PageHeader:
    """The 16 bytes at the start of every page.

    ``overflow`` is the number of pages after this one that belong to it: a page that does not
    fit in ``PAGE_SIZE`` (a large value, a long freelist) takes ``1 + overflow`` pages in a row.
    """

    id: int
    type: int
    count: int
    overflow: int = 0

    def pack(self) -> bytes:
        return PAGE_HEADER.pack(self.id, self.type, self.count, self.overflow)

    @classmethod
    def unpack(cls, data: Buffer, offset: int = 0) -> PageHeader:
        return cls(*PAGE_HEADER.unpack_from(data, offset))


def fnv1a_64(data: Buffer) -> int:
    """FNV-1a, 64 bits: the meta page's checksum (bbolt: ``meta.sum64``, Go's ``hash/fnv``)."""
    checksum = 0xCBF29CE484222325
    for byte in bytes(data):
        checksum = ((checksum ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return checksum


@dataclass(frozen=True, slots=True)
class Meta:
    """A meta page's body: where the tree starts, for one committed transaction.

    Pages 0 and 1 are both meta pages. A commit writes the new meta into page ``txid % 2``,
    so the other one still describes the previous commit: if the write is torn, its checksum
    fails and the reader uses the older meta (bbolt: ``db.meta``). That is the whole of
    bbolt's crash recovery, since a commit never overwrites a page the old tree uses.
    """

    page_size: int
    root: int  # the root bucket's root page
    freelist: int  # the freelist's page, or NO_FREELIST
    high_water: int  # the first page id past the end of the file's pages (bbolt: pgid)
    txid: int
    sequence: int = 0  # the root bucket's sequence (unused by etcd)
    flags: int = 0

    def pack(self) -> bytes:
        """The meta's bytes with its checksum, as they follow the page header."""
        fields = (
            MAGIC,
            VERSION,
            self.page_size,
            self.flags,
            self.root,
            self.sequence,
            self.freelist,
            self.high_water,
            self.txid,
        )
        checked = META.pack(*fields, 0)[:META_CHECKED_SIZE]
        return checked + fnv1a_64(checked).to_bytes(8, "little")

    @classmethod
    def unpack(cls, data: Buffer, offset: int = 0) -> Meta:
        """Read a meta page body (after its header), checking magic, version and checksum.

        Raises:
            BoltError: with bbolt's words (``invalid database``, ``version mismatch``,
                ``checksum error``).
        """
        magic, version, page_size, flags, root, sequence, freelist, high_water, txid, checksum = (
            META.unpack_from(data, offset)
        )
        if magic != MAGIC:
            raise BoltError("invalid database")
        if version != VERSION:
            raise BoltError("version mismatch")
        if checksum != fnv1a_64(data[offset : offset + META_CHECKED_SIZE]):
            raise BoltError("checksum error")
        return cls(page_size, root, freelist, high_water, txid, sequence, flags)


@dataclass(frozen=True, slots=True)
class LeafElement:
    """One key of a leaf page and its value; ``is_bucket``: the value is a bucket's header."""

    key: bytes
    value: bytes
    is_bucket: bool = False

    @property
    def size(self) -> int:
        """What the element adds to its page: the fixed part and its key and value bytes."""
        return LEAF_ELEMENT.size + len(self.key) + len(self.value)


# --8<-- [start:pack-leaf]
def pack_leaf(page_id: int, elements: Sequence[LeafElement]) -> bytes:
    """A leaf page (header, then the elements' fixed parts, then their keys and values).

    The fixed parts come first so that a reader can binary-search them; each one's ``pos``
    says how far after it its key starts, and the value follows the key (bbolt: ``node.write``).
    The page is not padded: `pad` makes it whole pages.
    """
    fixed = bytearray()
    data = bytearray()
    for index, element in enumerate(elements):
        pos = (len(elements) - index) * LEAF_ELEMENT.size + len(data)
        flags = BUCKET_LEAF_FLAG if element.is_bucket else 0
        fixed += LEAF_ELEMENT.pack(flags, pos, len(element.key), len(element.value))
        data += element.key + element.value
    header = PageHeader(page_id, PageType.LEAF, len(elements))
    return header.pack() + fixed + data


# --8<-- [end:pack-leaf]
def unpack_leaf(data: Buffer, offset: int, count: int) -> list[LeafElement]:
    """The ``count`` elements of the leaf page whose header is at ``offset``."""
    elements = []
    for index in range(count):
        at = offset + PAGE_HEADER.size + index * LEAF_ELEMENT.size
        flags, pos, key_size, value_size = LEAF_ELEMENT.unpack_from(data, at)
        key_at = at + pos
        key = bytes(data[key_at : key_at + key_size])
        value = bytes(data[key_at + key_size : key_at + key_size + value_size])
        elements.append(LeafElement(key, value, bool(flags & BUCKET_LEAF_FLAG)))
    return elements


def pack_branch(page_id: int, children: Sequence[tuple[bytes, int]]) -> bytes:
    """A branch page: for each child page, its first key and its id, in key order."""
    fixed = bytearray()
    keys = bytearray()
    for index, (key, child) in enumerate(children):
        pos = (len(children) - index) * BRANCH_ELEMENT.size + len(keys)
        fixed += BRANCH_ELEMENT.pack(pos, len(key), child)
        keys += key
    return PageHeader(page_id, PageType.BRANCH, len(children)).pack() + fixed + keys


def unpack_branch(data: Buffer, offset: int, count: int) -> list[tuple[bytes, int]]:
    """The ``(first key, child page id)`` pairs of the branch page at ``offset``."""
    children = []
    for index in range(count):
        at = offset + PAGE_HEADER.size + index * BRANCH_ELEMENT.size
        pos, key_size, child = BRANCH_ELEMENT.unpack_from(data, at)
        children.append((bytes(data[at + pos : at + pos + key_size]), child))
    return children


def pack_freelist(page_id: int, free: Sequence[int]) -> bytes:
    """A freelist page: the free page ids, sorted, as uint64s (bbolt: ``freelist.write``)."""
    ids = b"".join(page.to_bytes(8, "little") for page in sorted(free))
    if len(free) < FREELIST_OVERFLOW_COUNT:
        return PageHeader(page_id, PageType.FREELIST, len(free)).pack() + ids
    count = len(free).to_bytes(8, "little")
    return PageHeader(page_id, PageType.FREELIST, FREELIST_OVERFLOW_COUNT).pack() + count + ids


def unpack_freelist(data: Buffer, offset: int, count: int) -> list[int]:
    """The free page ids listed by the freelist page at ``offset``."""
    at = offset + PAGE_HEADER.size
    if count == FREELIST_OVERFLOW_COUNT:
        count = int.from_bytes(data[at : at + 8], "little")
        at += 8
    return list(struct.unpack_from(f"<{count}Q", data, at))


def pad(page: bytes, page_size: int) -> tuple[bytes, int]:
    """The page padded to whole pages, and how many pages past the first it takes (overflow).

    The overflow count is written into the page's header here: the caller packs the page
    before it knows its size.
    """
    pages = max(1, -(-len(page) // page_size))
    header = PageHeader.unpack(page)
    fixed = PageHeader(header.id, header.type, header.count, pages - 1).pack()
    return fixed + page[PAGE_HEADER.size :] + bytes(pages * page_size - len(page)), pages - 1
