"""Keys as the client takes them, ``str`` (encoded as UTF-8) or ``bytes``, and the two key
computations a range needs: `prefix_end` and `key_after` (chapter 1).
"""

from __future__ import annotations

Bytes = str | bytes


def to_bytes(data: Bytes) -> bytes:
    """``data`` as bytes: a ``str`` encoded as UTF-8."""
    return data.encode() if isinstance(data, str) else data


# --8<-- [start:prefix_end]
def prefix_end(prefix: Bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``.

    etcd's rule (clientv3 ``GetPrefixRangeEnd``): increment the last byte that is not 0xff
    and drop everything after it. A prefix of only 0xff bytes (or an empty one) has no upper
    bound, so the answer is ``b"\\x00"``, which etcd reads as "to the end of the key space".
    """
    end = bytearray(to_bytes(prefix))
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


# --8<-- [end:prefix_end]


def key_after(key: Bytes) -> bytes:
    """The smallest key greater than ``key``: ``key + b"\\x00"``.

    Where the next page of a range begins: ask for ``[key_after(last_key), range_end)`` with
    the same ``limit`` while the answer says ``more`` (etcdctl's ``--from-key`` paging, and
    clientv3's ``mirror`` syncer, continue this way).
    """
    return to_bytes(key) + b"\x00"
