"""The state machine: log entries applied to the store, in order, exactly once (chapter 2).

From chapter 2 on, a write is not applied when it arrives. It is first wrapped in an
``InternalRaftRequest`` and appended to the log (the write-ahead log now, Raft's log from
chapter 3) under the next *index*, and applied only once the log has it on disk. Restart
replays the log through the same code, so the store ends up where it was.

Two rules make replay safe (etcd: ``etcdserver/server.go``, ``applyEntryNormal``):

* Applying is deterministic: the same entries in the same order give the same store, the
  same revisions and the same errors. An entry whose request fails (a key not found for
  ``ignore_value``, a compaction below the last one) fails the same way every time.
* An entry at or below the *applied index* is skipped: the backend stores the index of the last
  entry it holds the effects of (the *consistent index*), so an entry is never applied twice.

Membership is applied state as well, from chapter 5 on (`kv.server.applied.members`): a
``ConfChange`` entry adds, promotes or removes a member, a ``cluster_member_attr_set``
entry records a member's name and client URLs, and a ``cluster_version_set`` entry the
version the cluster runs.

Leases are applied state from chapter 7 on (`kv.server.applied.leases`): a ``lease_grant``
or ``lease_revoke`` entry grants or revokes one, a ``lease_checkpoint`` entry records how long
leases have left, a put may attach its key to one, and after each write the keys it wrote
follow their leases.

Alarms are part of the applied state too (`kv.server.applied.alarms`): an ``AlarmRequest`` entry
raises or clears one, and while NOSPACE or CORRUPT is raised, the entries it refuses fail
here, when applied, exactly as they do on replay.
"""

from __future__ import annotations

from google.protobuf.message import Message

from kv.api.etcdserverpb.raft_internal_pb2 import EmptyResponse, InternalRaftRequest
from kv.lease import Lessor, min_ttl
from kv.mvcc import Store
from kv.raft import ConfChange
from kv.server.applied import apply
from kv.server.applied.alarms import AlarmStore
from kv.server.applied.leases import AppliedLeases
from kv.server.applied.members import MemberStore
from kv.server.applied.txn import apply_txn, puts_data
from kv.server.errors import EtcdError

Result = Message | EtcdError

#: The lessor's minimum TTL with etcd's default timing (100 ms heartbeat, 1 s election).
DEFAULT_MIN_TTL = min_ttl(1000, 100)


class StateMachine:
    """Applies logged requests to a `Store`, an `AlarmStore`, the members and the leases;
    remembers the index of the last one applied."""

    def __init__(
        self,
        store: Store,
        applied_index: int = 0,
        alarms: AlarmStore | None = None,
        members: MemberStore | None = None,
        leases: AppliedLeases | None = None,
    ) -> None:
        self.store = store
        self.applied_index = applied_index
        self.alarms = alarms if alarms is not None else AlarmStore()
        self.members = members
        self.leases = leases if leases is not None else AppliedLeases(Lessor(DEFAULT_MIN_TTL))

    # --8<-- [start:apply]
    def apply(self, index: int, request: InternalRaftRequest) -> Result | None:
        """Apply the entry at ``index``; None if it was applied before (a replayed entry)."""
        if index <= self.applied_index:
            return None
        try:
            result: Result = self._dispatch(request)
        except EtcdError as error:
            result = error
        self.applied_index = index
        return result

    # --8<-- [end:apply]

    def apply_conf_change(self, index: int, change: ConfChange) -> bool:
        """Apply a membership change entry; False if it was applied before (chapter 5)."""
        if index <= self.applied_index:
            return False
        if self.members is not None:
            self.members.apply_conf_change(change)
        self.applied_index = index
        return True

    def skip(self, index: int) -> None:
        """Count an entry with nothing to apply (a new leader's empty entry) as applied."""
        self.applied_index = max(self.applied_index, index)

    def _dispatch(self, request: InternalRaftRequest) -> Message:
        kind = _request_kind(request)
        if kind == "alarm":
            return self.alarms.apply(request.alarm)
        if kind == "cluster_version_set":
            if self.members is not None:
                self.members.set_cluster_version(request.cluster_version_set.ver)
            return EmptyResponse()
        if kind == "cluster_member_attr_set":
            if self.members is not None:
                self.members.set_attributes(request.cluster_member_attr_set)
            return EmptyResponse()
        # etcd: applierV3Capped, applierV3Corrupt
        adds_data = kind != "txn" or puts_data(request.txn)
        refusal = self.alarms.refusal(kind, adds_data=adds_data)
        if refusal is not None:
            raise refusal
        before = self.store.current_revision
        result = self._write(kind, request)
        self.leases.follow(self.store, before)  # the written keys follow their leases
        return result

    def _write(self, kind: str | None, request: InternalRaftRequest) -> Message:
        if kind == "put":
            self.leases.check_exists(request.put.lease)
            with self.store.write() as txn:
                return apply.apply_put(txn, request.put)
        if kind == "delete_range":
            with self.store.write() as txn:
                return apply.apply_delete_range(txn, request.delete_range)
        if kind == "txn":  # chapter 6
            return apply_txn(self.store, request.txn, leases=self.leases.lessor)
        if kind == "compaction":
            return apply.apply_compact(self.store, request.compaction)
        if kind == "lease_grant":  # chapter 7
            return self.leases.grant(self.store, request.lease_grant)
        if kind == "lease_revoke":
            return self.leases.revoke(self.store, request.lease_revoke)
        if kind == "lease_checkpoint":
            return self.leases.checkpoint(self.store, request.lease_checkpoint)
        raise ValueError(f"kv cannot apply a log entry of kind {kind!r}")


def _request_kind(request: InternalRaftRequest) -> str | None:
    """Which request the entry carries (etcd's message has no oneof: the set field tells)."""
    if request.HasField("put"):  # most entries: asked first, without listing the fields
        return "put"
    for field, _ in request.ListFields():
        if field.name not in ("header", "ID"):
            return field.name
    return None
