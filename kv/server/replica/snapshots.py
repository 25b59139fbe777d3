"""The snapshots a replica makes: its own, to compact its log, and one for a follower that
fell behind (chapters 2 and 5).

* **its own** -- every ``--snapshot-count`` applied entries, the member makes its backend
  durable and records a snapshot at the applied index, which lets `kv.server.disk.raft_disk`
  release the log before it (etcd: ``triggerSnapshot``);
* **for a follower** -- when the core asks for a MsgSnap, the transport asks for a snapshot
  made there and then (etcd: ``createMergedSnapshotMessage``), not the stored one.

A snapshot *received* from the leader is installed by the replica's apply step, as the
Ready that carries it demands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kv.api.raftpb import raft_pb2
from kv.server import raft_wire
from kv.server.applied.applied_state import copy_backend
from kv.server.replica import batching

if TYPE_CHECKING:  # the replica calls into this module: no import cycle at run time
    from kv.server.replica.replica import Replica


# --8<-- [start:maybe_snapshot]
def maybe_snapshot(replica: Replica) -> None:
    """Take a snapshot if ``--snapshot-count`` entries were applied since the last one."""
    disk, policy = replica.disk, replica.policy
    if replica.applied - disk.snapshot_index < policy.snapshot_count:
        return
    batching.commit(replica)  # the batch the log covers, with its consistent index, ...
    replica.backend.sync()  # ... made durable: the log may only be released once it is safe
    disk.snapshot(
        replica.applied,
        replica.raw.conf_state(),
        max_wals=policy.max_wals,
        max_snapshots=policy.max_snapshots,
        catch_up_entries=replica.catch_up_entries,
    )


# --8<-- [end:maybe_snapshot]


# --8<-- [start:merged_snapshot]
async def merged_snapshot(replica: Replica) -> raft_pb2.Snapshot:
    """The snapshot a MsgSnap carries, made now (etcd: createMergedSnapshotMessage).

    Its data is a copy of the backend; its metadata is the applied index, that entry's
    term and the configuration as of now. The core's stored snapshot is only taken every
    --snapshot-count entries and may not list a member added since, which would refuse
    it. The copy is taken after the metadata, from a commit made then, so it holds at
    least that much (its consistent index tells the recipient where it really stands).
    """
    index = replica.applied
    metadata = raft_pb2.SnapshotMetadata(
        index=index,
        term=replica.raw.term_at(index),
        conf_state=raft_wire.conf_state_to_pb(replica.raw.conf_state()),
    )
    replica.commit_backend()  # the copy reads the file: it must hold the applied index
    return raft_pb2.Snapshot(data=await copy_backend(replica.backend), metadata=metadata)


# --8<-- [end:merged_snapshot]
