"""Leases in the apply layer: LeaseGrant and LeaseRevoke entries, and keys that follow their
leases (chapter 7).

The lessor (`kv.lease.Lessor`) is pure; this module ties it to the member's applied state, as
etcd's applier and MVCC store tie its lessor (``etcdserver/apply.go``, ``mvcc/kvstore_txn.go``):

* a **LeaseGrant** entry grants the lease and records it in the backend's ``lease`` table;
* a **LeaseRevoke** entry forgets the lease and deletes its keys in one write -- one revision
  for all of them, in sorted key order, or no revision at all if it had none;
* a **LeaseCheckpoint** entry (the leader's, with ``--experimental-enable-lease-checkpoint``)
  writes each lease's remaining TTL on it, and into its record in the ``lease`` table too with
  ``--experimental-enable-lease-checkpoint-persist``, as etcd 3.4.20 and later do
  (`kv.lease.checkpoint` says why the second flag matters: a restart);
* after **every write** (a put, a delete, a txn, a revoke), each key it wrote follows its
  lease: attached to the lease it was written with, detached from the one it had
  (`AppliedLeases.follow`). A put without a lease detaches the key, as in etcd;
* at **start**, and after a **leader's snapshot** replaced the backend, the lessor is read
  back: the leases from the ``lease`` table (with the checkpoints persisted there), their
  keys from the store (`open_lessor`).

Every member applies the same entries, so every member's lessor holds the same leases with
the same keys. Only the leader's has deadlines (`kv.lease.lessor`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol

from kv.api.etcdserverpb import rpc_pb2
from kv.lease import LeaseError, Lessor
from kv.mvcc import Revision, Store
from kv.server import errors


class LeaseTable(Protocol):
    """Where granted leases are kept: `kv.backend.Backend` (its ``lease`` table)."""

    def leases(self) -> list[tuple[int, int]]: ...
    def put_lease(self, lease_id: int, ttl: int) -> None: ...
    def delete_lease(self, lease_id: int) -> None: ...


class CheckpointTable(Protocol):
    """Where persisted checkpoints are kept: `kv.backend.Backend` (the ``lease`` table)."""

    def lease_checkpoints(self) -> dict[int, int]: ...
    def checkpoint_lease(self, lease_id: int, remaining_ttl: int) -> None: ...


def _no_clock() -> float:
    """The moment a grant is applied, where nobody keeps deadlines (a state machine that
    only replays a log, as a test's reference does)."""
    return 0.0


class AppliedLeases:
    """A member's lessor, changed only by applied entries, and its table on disk."""

    def __init__(
        self,
        lessor: Lessor,
        table: LeaseTable | None = None,
        clock: Callable[[], float] = _no_clock,
        checkpoints: CheckpointTable | None = None,
    ) -> None:
        """Leases kept by ``lessor`` and recorded in ``table`` (None: in memory only);
        ``clock()`` is the leader's now, for the expiry of a lease granted while it leads;
        checkpoints are recorded in ``checkpoints`` (None: not persisted)."""
        self.lessor = lessor
        self.table = table
        self.clock = clock
        self.checkpoints = checkpoints

    # --8<-- [start:grant]
    def grant(self, store: Store, request: rpc_pb2.LeaseGrantRequest) -> rpc_pb2.LeaseGrantResponse:
        """Apply a LeaseGrant (its ID was chosen before it was proposed: never 0 here)."""
        try:
            lease = self.lessor.grant(request.ID, request.TTL, now=self.clock())
        except LeaseError as error:
            raise errors.from_lease(error) from error
        if self.table is not None:
            self.table.put_lease(lease.id, lease.ttl)
        response = rpc_pb2.LeaseGrantResponse(ID=lease.id, TTL=lease.ttl)
        response.header.revision = store.current_revision
        return response

    # --8<-- [end:grant]

    # --8<-- [start:revoke]
    def revoke(
        self, store: Store, request: rpc_pb2.LeaseRevokeRequest
    ) -> rpc_pb2.LeaseRevokeResponse:
        """Apply a LeaseRevoke: the lease goes, and its keys with it, at one revision."""
        try:
            keys = self.lessor.revoke(request.ID)
        except LeaseError as error:
            raise errors.from_lease(error) from error
        with store.write() as txn:  # no keys, no change: the revision stays
            for key in keys:  # sorted: a watcher sees the deletes in key order
                txn.delete_range(key)
        if self.table is not None:
            self.table.delete_lease(request.ID)
        response = rpc_pb2.LeaseRevokeResponse()
        response.header.revision = store.current_revision
        return response

    # --8<-- [end:revoke]

    # --8<-- [start:checkpoint]
    def checkpoint(
        self, store: Store, request: rpc_pb2.LeaseCheckpointRequest
    ) -> rpc_pb2.LeaseCheckpointResponse:
        """Apply a LeaseCheckpoint: each lease still granted takes its remaining TTL (etcd:
        ``applierV3backend.LeaseCheckpoint``, then ``lessor.Checkpoint``)."""
        now = self.clock()
        for checkpoint in request.checkpoints:
            lease = self.lessor.checkpoint(checkpoint.ID, checkpoint.remaining_TTL, now)
            if lease is not None and self.checkpoints is not None:
                self.checkpoints.checkpoint_lease(lease.id, lease.checkpoint_ttl)
        response = rpc_pb2.LeaseCheckpointResponse()
        response.header.revision = store.current_revision
        return response

    # --8<-- [end:checkpoint]

    def check_exists(self, lease_id: int) -> None:
        """A put with a lease needs the lease (etcd looks it up before the write begins)."""
        if lease_id and lease_id not in self.lessor:
            raise errors.LEASE_NOT_FOUND

    # --8<-- [start:follow]
    def follow(self, store: Store, before: int) -> None:
        """The store moved from revision ``before``: let each key written since follow its
        lease. Nothing to do while there are no leases: then no key has one either."""
        revision = store.current_revision
        if revision == before or not len(self.lessor):
            return
        for sub in itertools.count():
            entry = store.history.get(Revision(revision, sub))
            if entry is None:
                return
            self.lessor.set_key(entry.kv.key, 0 if entry.tombstone else entry.kv.lease)

    # --8<-- [end:follow]


def open_lessor(
    lessor: Lessor, table: LeaseTable, store: Store, checkpoints: CheckpointTable | None = None
) -> Lessor:
    """Fill ``lessor`` with the leases of ``table`` (with their persisted remaining TTLs, from
    ``checkpoints``) and attach the keys of ``store`` that name one (etcd:
    ``lessor.initAndRecover``, then the store's ``restore``)."""
    remaining = checkpoints.lease_checkpoints() if checkpoints is not None else {}
    for lease_id, ttl in table.leases():
        lessor.restore(lease_id, ttl, remaining.get(lease_id, 0))
    if len(lessor):
        for kv in store.range(b"\0", b"\0").kvs:  # every live key
            if kv.lease:
                lessor.set_key(kv.key, kv.lease)
    return lessor
