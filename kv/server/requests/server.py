"""The server: one member answering requests, etcd's ``EtcdServer`` (chapters 1, 2, 4-7).

The server validates a request, has it carried out, and stamps the answer with a
`ResponseHeader` saying who answered (cluster and member id), at which revision, in which
Raft term. Writes go through the member's `kv.server.replica.replica.Replica`: replicated by Raft to
a majority's disks, applied, answered (a member alone is a majority of one: chapter 2's
durable write path is the same loop, as in etcd).
Serializable reads are served from the local store at once; linearizable ones (the default)
first wait for a ReadIndex round. The services in `kv.server.requests.services` only ever talk to
this class.

Chapter 2 adds maintenance: the space quota and its NOSPACE alarm (`kv.server.requests.quota`,
`kv.server.applied.alarms`), defragmenting the backend, and streaming a snapshot of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from google.protobuf.message import Message
from grpc import StatusCode

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.backend import Backend, BackendError
from kv.mvcc import MvccError, Store, hash_kv
from kv.server import errors
from kv.server.applied import alarms, apply, txn
from kv.server.applied.alarms import AlarmStore
from kv.server.config import DEFAULT_MAX_TXN_OPS
from kv.server.disk.data_dir import SNAPSHOT_COPY_PREFIX, SNAPSHOT_COPY_SUFFIX
from kv.server.disk.etcd_db import save_etcd_db
from kv.server.errors import EtcdError
from kv.server.replica.replica import Replica
from kv.server.requests import quota, validate
from kv.server.requests.leases import LeaseRequests
from kv.server.requests.reconfigure import Reconfiguration

# The etcd API kv implements; clients compare the major.minor of Status.version.
API_VERSION = "3.4.0"
#: A Snapshot stream sends the backend in blobs of this size (etcd: maintenance.go).
SNAPSHOT_CHUNK_BYTES = 32 * 1024

log = logging.getLogger(__name__)


class Server:
    """One member serving etcd's KV, Maintenance and Cluster requests (etcd: EtcdServer)."""

    def __init__(
        self,
        *,
        replica: Replica,
        max_request_bytes: int,
        quota_backend_bytes: int = 0,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        watch_progress_interval: float = 600.0,
    ) -> None:
        self.replica = replica
        #: Seconds between progress notifications to watches that asked (chapter 8).
        self.watch_progress_interval = watch_progress_interval
        self.quota_bytes = quota.quota_bytes(quota_backend_bytes)
        self._quota: quota.BackendQuota | None = None
        replica.fits_quota = lambda request: self.quota.fits(request)  # checked again, applied
        self.max_request_bytes = max_request_bytes
        self.max_txn_ops = max_txn_ops
        self.reconfiguration = Reconfiguration(replica)
        #: etcd's Lease service (chapter 7).
        self.leases = LeaseRequests(self)

    # The state machine is replaced when a leader's snapshot is installed: always ask the
    # replica for the current one.
    @property
    def store(self) -> Store:
        return self.replica.machine.store

    @property
    def alarms(self) -> AlarmStore:
        return self.replica.machine.alarms

    @property
    def backend(self) -> Backend:
        return self.replica.backend

    @property
    def quota(self) -> quota.BackendQuota:
        # Asked twice per write (here, and as it is applied): made anew only when the
        # backend was replaced by a leader's snapshot.
        backend = self.backend
        if self._quota is None or self._quota.backend is not backend:
            self._quota = quota.BackendQuota(backend, self.quota_bytes)
        return self._quota

    @property
    def member_id(self) -> int:
        return self.replica.member_id

    def header(self, revision: int = 0) -> rpc_pb2.ResponseHeader:
        """Who answered, at which revision and term (etcd fills most responses with this)."""
        header = rpc_pb2.ResponseHeader(revision=revision)
        self.stamp(header)
        return header

    def stamp(self, header: rpc_pb2.ResponseHeader) -> None:
        """Fill in who answered, and in which term, a response whose header holds its revision
        already (every read and write is stamped in place, not given a header to copy)."""
        replica = self.replica
        header.cluster_id = replica.cluster_id
        header.member_id = replica.member_id
        header.raft_term = replica.term

    # --8<-- [start:requests]
    async def range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        validate.check_range(request)
        if not request.serializable:
            self.refuse_on_learner()
            await self.replica.proposals.linearizable_read()  # ReadIndex (chapter 4)
        response = apply.apply_range(self.store, request)
        self.stamp(response.header)
        return response

    async def put(self, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        self.refuse_on_learner()
        await self.check_quota(quota.cost_put(request))  # etcd: first, before validation
        validate.check_put(request)
        validate.check_request_size(request, self.max_request_bytes)
        response = await self.write(InternalRaftRequest(put=request))
        assert isinstance(response, rpc_pb2.PutResponse)
        return response

    # --8<-- [end:requests]

    async def delete_range(
        self, request: rpc_pb2.DeleteRangeRequest
    ) -> rpc_pb2.DeleteRangeResponse:
        self.refuse_on_learner()
        validate.check_delete_range(request)
        validate.check_request_size(request, self.max_request_bytes)
        response = await self.write(InternalRaftRequest(delete_range=request))
        assert isinstance(response, rpc_pb2.DeleteRangeResponse)
        return response

    # --8<-- [start:txn]
    async def txn(self, request: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        """A transaction (chapter 6): a read-only one is served here, others go through the log.

        etcd's order: a learner refuses every txn; the quota is checked first (even for a
        read-only txn: etcd wraps the whole Txn RPC); then the form of both branches.
        """
        self.refuse_on_learner()
        await self.check_quota(quota.cost_txn(request))
        validate.check_txn(request, self.max_txn_ops)
        if txn.is_read_only(request):  # etcd: isTxnReadonly, served without the log
            if not txn.is_serializable(request):
                await self.replica.proposals.linearizable_read()  # ReadIndex, as for a Range
            response = txn.apply_txn(self.store, request)
            self.stamp(response.header)
            return response
        validate.check_request_size(request, self.max_request_bytes)
        written = await self.write(InternalRaftRequest(txn=request))
        assert isinstance(written, rpc_pb2.TxnResponse)
        return written

    # --8<-- [end:txn]

    async def compact(self, request: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        self.refuse_on_learner()
        validate.check_request_size(request, self.max_request_bytes)
        response = await self.write(InternalRaftRequest(compaction=request))
        assert isinstance(response, rpc_pb2.CompactionResponse)
        return response

    def refuse_on_learner(self) -> None:
        self.replica.check_not_learner()

    # --8<-- [start:write]
    async def write(self, request: InternalRaftRequest) -> Message:
        """Send a write through the log; answer once it is durable and applied."""
        result = await self._propose(request)
        self.stamp(result.header)  # type: ignore[attr-defined]
        return result

    async def _propose(self, request: InternalRaftRequest) -> Message:
        """Replicate ``request`` (the replica gives it a request id); its applied result, or
        raise its error."""
        result = await self.replica.proposals.propose(request)
        if isinstance(result, EtcdError):
            raise result
        return result

    # --8<-- [end:write]

    # --8<-- [start:quota]
    async def check_quota(self, cost: int) -> None:
        """Refuse a request that would outgrow the quota, raising NOSPACE through the log.

        etcd: ``etcdserver/api/v3rpc/quota.go``. The alarm is proposed like any write, so it
        is durable and replayed; whether it was raised before does not matter (raising it again
        changes nothing).
        """
        if self.quota.available(cost):
            return
        raise_nospace = rpc_pb2.AlarmRequest(
            action=rpc_pb2.AlarmRequest.ACTIVATE,
            memberID=self.member_id,
            alarm=rpc_pb2.AlarmType.NOSPACE,
        )
        await self._propose(InternalRaftRequest(alarm=raise_nospace))
        raise errors.NO_SPACE

    # --8<-- [end:quota]

    def hash_kv(self, request: rpc_pb2.HashKVRequest) -> rpc_pb2.HashKVResponse:
        self.refuse_on_learner()
        try:
            result = hash_kv(self.store, request.revision, apply.encode)
        except MvccError as error:
            raise errors.from_mvcc(error) from error
        return rpc_pb2.HashKVResponse(
            header=self.header(result.revision),
            hash=result.hash,
            compact_revision=result.compact_revision,
        )

    def hash(self) -> rpc_pb2.HashResponse:
        """etcd's Maintenance.Hash: a checksum of the whole backend (`Backend.hash`)."""
        self.refuse_on_learner()
        return rpc_pb2.HashResponse(
            header=self.header(self.store.current_revision), hash=self.backend.hash()
        )

    def status(self) -> rpc_pb2.StatusResponse:
        replica = self.replica
        return rpc_pb2.StatusResponse(
            header=self.header(self.store.current_revision),
            version=API_VERSION,
            dbSize=self.backend.size_bytes,
            dbSizeInUse=self.backend.size_in_use_bytes,
            leader=replica.leader,
            raftIndex=replica.commit_index,  # etcd: the committed index
            raftTerm=replica.term,
            raftAppliedIndex=replica.applied,
            # etcd lists each raised alarm in its text form, "memberID:... alarm:NOSPACE ",
            # and says so when this member knows no leader.
            errors=[alarms.alarm_text(alarm) for alarm in self.alarms.get()]
            + ([] if replica.leader else [errors.NO_LEADER.message]),
            isLearner=replica.is_learner,
        )

    def member_list(self) -> rpc_pb2.MemberListResponse:
        self.refuse_on_learner()
        # etcd's cluster service stamps no revision: membership is not part of the key space.
        return self.replica.member_list()

    async def alarm(self, request: rpc_pb2.AlarmRequest) -> rpc_pb2.AlarmResponse:
        """List, raise or clear alarms: every action goes through the log.

        etcd 3.4 logs even a GET (``EtcdServer.Alarm``), so the list is the one at a point of
        the log; and it answers without a header.
        """
        self.refuse_on_learner()
        alarms.check_request(request)
        response = await self._propose(InternalRaftRequest(alarm=request))
        assert isinstance(response, rpc_pb2.AlarmResponse)
        return response

    # --8<-- [start:defragment]
    def defragment(self) -> rpc_pb2.DefragmentResponse:
        """Give the backend's free pages back to the file system (``etcdctl defrag``).

        This runs in the event loop, between two Readys; the backend's open batch is
        committed first, as etcd's defrag commits it. Like etcd's, it holds up every other
        request while it runs.
        """
        self.refuse_on_learner()
        log.info("starting to defragment the storage backend...")
        try:
            self.replica.commit_backend()
            self.backend.defragment()
        except BackendError as error:
            log.error("failed to defragment the storage backend (%s)", error)
            raise EtcdError(StatusCode.UNKNOWN, str(error)) from error
        log.info("finished defragmenting the storage backend")
        return rpc_pb2.DefragmentResponse()  # etcd 3.4: no header

    # --8<-- [end:defragment]

    # --8<-- [start:snapshot]
    async def snapshot(self) -> AsyncIterator[rpc_pb2.SnapshotResponse]:
        """Stream a consistent copy of the backend in etcd's own file format, framed as etcd's
        Maintenance.Snapshot frames it.

        The copy is etcd's bbolt file (`kv.server.disk.etcd_db`: etcd 3.4's buckets and
        keys), so ``etcdctl snapshot status`` and ``snapshot restore`` take it as etcd's own.
        Blobs of 32 KiB, each with ``remaining_bytes`` = what is still to come after it (so 0
        on the last blob of data), then one more message whose blob is the SHA-256 of all the
        data, ``remaining_bytes`` 0. No header. The client concatenates every blob, so the
        file it saves is the database followed by 32 bytes of hash: whole pages plus 32,
        which is how ``etcdctl snapshot save`` knows the hash is there (size % 512 == 32).

        The copy is made in a worker thread from a commit made first (as etcd's backend commits
        its batch before a snapshot), never half a batch, into a file beside the backend that
        is removed when the stream ends, however it ends.
        """
        self.refuse_on_learner()
        self.replica.commit_backend()
        backend = self.backend
        descriptor, name = tempfile.mkstemp(
            prefix=SNAPSHOT_COPY_PREFIX, suffix=SNAPSHOT_COPY_SUFFIX, dir=backend.path.parent
        )
        copy = Path(name)
        try:
            os.close(descriptor)
            size = await asyncio.to_thread(save_etcd_db, backend, copy)
            digest = hashlib.sha256()
            sent = 0
            with copy.open("rb") as file:
                while sent < size:
                    blob = file.read(SNAPSHOT_CHUNK_BYTES)
                    if not blob:
                        raise EtcdError(StatusCode.UNKNOWN, f"{copy} ended before {size} bytes")
                    sent += len(blob)
                    digest.update(blob)
                    yield rpc_pb2.SnapshotResponse(remaining_bytes=size - sent, blob=blob)
            yield rpc_pb2.SnapshotResponse(remaining_bytes=0, blob=digest.digest())
        finally:
            copy.unlink(missing_ok=True)

    # --8<-- [end:snapshot]
