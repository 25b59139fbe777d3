"""The errors of the Raft core, with etcd's messages (etcd: ``raft/storage.go``, ``raft.go``)."""

from __future__ import annotations


class RaftError(Exception):
    """Base class; ``message`` is etcd's text."""

    message = "raft: error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.message}: {detail}" if detail else self.message)


class CompactedError(RaftError):
    """The entries asked for were compacted away: only a snapshot can supply them."""

    message = "requested index is unavailable due to compaction"


class SnapshotOutOfDateError(RaftError):
    """A snapshot older than the one storage already holds."""

    message = "requested index is older than the existing snapshot"


class UnavailableError(RaftError):
    """The entries asked for are not in the log (yet)."""

    message = "requested entry at index is unavailable"


class SnapshotTemporarilyUnavailableError(RaftError):
    """Storage is still making a snapshot; the leader tries again later."""

    message = "snapshot is temporarily unavailable"


class ProposalDroppedError(RaftError):
    """A proposal the node could not take: no leader, a leader transfer under way, ..."""

    message = "raft proposal dropped"


class StepLocalMessageError(RaftError):
    """A local-only message (a tick's MsgHup, MsgBeat, ...) arrived from the network."""

    message = "raft: cannot step raft local message"


class StepPeerNotFoundError(RaftError):
    """A response from a node that is not in this node's configuration."""

    message = "raft: cannot step as peer not found"
