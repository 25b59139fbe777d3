"""The errors the MVCC store raises (chapter 1).

Their messages are etcd's, because clients match on the text: the gRPC layer sends them
prefixed with ``etcdserver: `` (etcd: ``mvcc/kvstore.go``, ``etcdserver/api/v3rpc/rpctypes``).
"""

from __future__ import annotations


class MvccError(Exception):
    """Base class; ``message`` is etcd's text for the error."""

    message = "mvcc: error"

    def __init__(self) -> None:
        super().__init__(self.message)


class CompactedError(MvccError):
    """The revision asked for is older than the compaction revision: its history is gone."""

    message = "mvcc: required revision has been compacted"


class FutureRevisionError(MvccError):
    """The revision asked for has not happened yet."""

    message = "mvcc: required revision is a future revision"
