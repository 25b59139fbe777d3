"""kv.raft: the Raft consensus core (chapters 3-5). Pure: no I/O, no clock, no global randomness.

The core implements Raft as etcd runs it (etcd-io/raft) and nothing else: the network and the
disk are the caller's. Time is `RawNode.tick` calls, randomness a seeded ``random.Random``
passed in, and everything the node wants done comes out of `RawNode.ready` as one `Ready`.

Modules, in reading order:

* `messages` -- `Message`, `Entry`, `HardState`, `Snapshot`, `ConfState`, `ConfChange`.
* `storage` -- the `Storage` protocol the core reads stable state through; `MemoryStorage`.
* `unstable`, `log` -- `RaftLog`: stable entries plus the unstable tail; commit and applied.
* `progress`, `quorum`, `tracker` -- a leader's view of each member; majorities.
* `read_only` -- ReadIndex bookkeeping.
* `events` -- the structured event stream ("n2 became candidate at term 3").
* `config` -- `Config`: ticks, sizes, PreVote, CheckQuorum.
* `roles` -- `Role` and `CampaignType`, the names every role module shares.
* `raft` -- `Raft`, the state machine: roles, terms, elections; it dispatches each message
  to the handlers of the node's role, one module per role:
* `follower` -- the follower's side: the leader's appends, heartbeats and snapshots taken,
  proposals and reads forwarded to it.
* `leader` -- the leader's side: appends, heartbeats, commitment, ReadIndex, transfer.
* `conf_change` -- membership changes: a committed `ConfChange` applied (one member at a
  time, voters and learners), and why a node with one pending does not campaign.
* `node` -- `RawNode` and `Ready`: the public surface (inputs, Readys, read-only accessors).
* `errors` -- the errors, with etcd's messages.
"""

from kv.raft import events
from kv.raft.config import Config
from kv.raft.errors import (
    CompactedError,
    ProposalDroppedError,
    RaftError,
    SnapshotOutOfDateError,
    SnapshotTemporarilyUnavailableError,
    StepLocalMessageError,
    StepPeerNotFoundError,
    UnavailableError,
)
from kv.raft.messages import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from kv.raft.node import RawNode, Ready, SoftState, Status
from kv.raft.progress import PeerStatus, ProgressState
from kv.raft.raft import RandomSource
from kv.raft.read_only import ReadOnlyOption, ReadState
from kv.raft.roles import Role
from kv.raft.storage import MemoryStorage, Storage

__all__ = [
    "NONE",
    "CompactedError",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Config",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "PeerStatus",
    "ProgressState",
    "ProposalDroppedError",
    "RaftError",
    "RandomSource",
    "RawNode",
    "ReadOnlyOption",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotOutOfDateError",
    "SnapshotTemporarilyUnavailableError",
    "SoftState",
    "Status",
    "StepLocalMessageError",
    "StepPeerNotFoundError",
    "Storage",
    "UnavailableError",
    "events",
]
