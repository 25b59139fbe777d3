"""Paging through a key space and showing its bytes: the pure half of the key browser.

etcd never returns a huge range in one piece if asked not to: a Range with ``limit`` answers
at most that many keys and says ``more`` when there are others. The next page starts just
after the last key shown -- ``last + b"\\0"``, the smallest key greater than it
(`kv.client.key_after`), which is how ``etcdctl get --from-key`` and clientv3's paginated
readers continue. Going back needs no server help: the pager remembers where each page it
showed began.

The key space shown is one prefix (empty: every key): ``[prefix, prefix_end(prefix))``, or
for the empty prefix ``[b"\\0", b"\\0")``, etcd's "every key from \\0 on" (``etcdctl get ""
--prefix`` sends exactly that).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from kv.client import key_after, prefix_end

#: Keys per page: a screenful at 80x24 is about ten; more makes scrolling useful at larger
#: sizes and still keeps one answer small.
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One Range to send: ``[key, range_end)``, at most ``limit`` keys."""

    key: bytes
    range_end: bytes
    limit: int


@dataclass(slots=True)
class Pager:
    """Where the browser stands in the key space under ``prefix``."""

    prefix: bytes = b""
    page_size: int = PAGE_SIZE
    #: Where each page shown so far began; the last one is the current page.
    starts: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.starts:
            self.starts.append(self.first_key)

    @property
    def first_key(self) -> bytes:
        return prefix_range(self.prefix)[0]

    @property
    def range_end(self) -> bytes:
        return prefix_range(self.prefix)[1]

    @property
    def page_number(self) -> int:
        """1 for the first page."""
        return len(self.starts)

    def request(self) -> PageRequest:
        """The Range for the current page."""
        return PageRequest(self.starts[-1], self.range_end, self.page_size)

    def next(self, last_key: bytes) -> PageRequest:
        """Move to the page after the one whose last key was ``last_key``."""
        self.starts.append(key_after(last_key))
        return self.request()

    def previous(self) -> PageRequest | None:
        """Move back one page (None: this is the first)."""
        if len(self.starts) == 1:
            return None
        self.starts.pop()
        return self.request()


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """``[key, range_end)`` of every key under ``prefix``; the empty prefix is every key,
    ``[b"\\0", b"\\0")`` (what ``etcdctl get "" --prefix`` and ``etcdctl watch "" --prefix``
    send)."""
    return (prefix, prefix_end(prefix)) if prefix else (b"\0", b"\0")


def preview(data: bytes, width: int = 40) -> str:
    """``data`` as one line a terminal can show: UTF-8 text as itself, anything else (control
    characters, invalid UTF-8, line breaks) escaped as ``\\xNN`` or ``\\n``; cut to ``width``
    characters with ``…``."""
    text = data.decode("utf-8", errors="surrogateescape")
    shown = []
    for char in text:
        if 0xDC80 <= ord(char) <= 0xDCFF:  # a byte that was not UTF-8
            shown.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char == "\\":
            shown.append("\\\\")
        elif unicodedata.category(char)[0] in "CZ" and char != " ":
            shown.append(repr(char)[1:-1])
        else:
            shown.append(char)
    line = "".join(shown)
    return line if len(line) <= width else line[: width - 1] + "…"


def parse_bytes(text: str) -> bytes:
    """What a person typed as a key or value, as bytes: the reverse of `preview` for the
    escapes it writes (``\\xNN``, ``\\n``, ``\\t``, ``\\\\``), so an escaped key can be edited."""
    return text.encode("utf-8", errors="surrogateescape").decode("unicode_escape").encode("latin-1")
