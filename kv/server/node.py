"""The node: one member's state and the requests it serves (chapter 1).

In chapter 1 a node is a single member with an in-memory store: it validates a request,
applies it, and stamps the answer with a `ResponseHeader` saying who answered (cluster and
member id), at which revision, in which Raft term. Chapter 2 makes it durable and chapter 3
puts Raft between receiving a write and applying it; the services in `kv.server.services`
only ever talk to this class.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from kv.api.etcdserverpb import rpc_pb2
from kv.membership import Cluster, Member
from kv.mvcc import MvccError, Store, hash_kv
from kv.server import apply, errors, validate

# The etcd API kv implements; clients compare the major.minor of Status.version.
API_VERSION = "3.4.0"
# Without Raft (chapter 3) a single member is its own leader in one unchanging term.
SINGLE_MEMBER_TERM = 1

WriteResponse = TypeVar(
    "WriteResponse",
    rpc_pb2.PutResponse,
    rpc_pb2.DeleteRangeResponse,
    rpc_pb2.CompactionResponse,
)


class Node:
    """A single member serving etcd's KV, Maintenance and Cluster requests."""

    def __init__(
        self,
        *,
        name: str,
        cluster: Cluster,
        client_urls: tuple[str, ...],
        max_request_bytes: int,
    ) -> None:
        self.store = Store()
        self.member: Member = replace(cluster.member_named(name), client_urls=client_urls)
        self.cluster = replace(
            cluster,
            members=tuple(self.member if m.id == self.member.id else m for m in cluster.members),
        )
        self.cluster_id = cluster.id
        self.max_request_bytes = max_request_bytes
        # How many write requests have been applied: chapter 3 turns it into the Raft index.
        self.applied_index = 0

    def header(self, revision: int = 0) -> rpc_pb2.ResponseHeader:
        """Who answered, at which revision and term (etcd fills most responses with this)."""
        return rpc_pb2.ResponseHeader(
            cluster_id=self.cluster_id,
            member_id=self.member.id,
            revision=revision,
            raft_term=SINGLE_MEMBER_TERM,
        )

    # --8<-- [start:requests]
    def range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        validate.check_range(request)
        response = apply.apply_range(self.store, request)
        response.header.CopyFrom(self.header(response.header.revision))
        return response

    def put(self, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        validate.check_put(request)
        validate.check_request_size(request, self.max_request_bytes)
        with self.store.write() as txn:
            response = apply.apply_put(txn, request)
        return self._written(response)

    # --8<-- [end:requests]

    def delete_range(self, request: rpc_pb2.DeleteRangeRequest) -> rpc_pb2.DeleteRangeResponse:
        validate.check_delete_range(request)
        validate.check_request_size(request, self.max_request_bytes)
        with self.store.write() as txn:
            response = apply.apply_delete_range(txn, request)
        return self._written(response)

    def compact(self, request: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        validate.check_request_size(request, self.max_request_bytes)
        return self._written(apply.apply_compact(self.store, request))

    def _written(self, response: WriteResponse) -> WriteResponse:
        self.applied_index += 1
        response.header.CopyFrom(self.header(response.header.revision))
        return response

    def hash_kv(self, request: rpc_pb2.HashKVRequest) -> rpc_pb2.HashKVResponse:
        try:
            result = hash_kv(self.store, request.revision, apply.encode)
        except MvccError as error:
            raise errors.from_mvcc(error) from error
        return rpc_pb2.HashKVResponse(
            header=self.header(result.revision),
            hash=result.hash,
            compact_revision=result.compact_revision,
        )

    def status(self) -> rpc_pb2.StatusResponse:
        size = self.store_size()
        return rpc_pb2.StatusResponse(
            header=self.header(self.store.current_revision),
            version=API_VERSION,
            dbSize=size,
            dbSizeInUse=size,
            leader=self.member.id,
            raftIndex=self.applied_index,
            raftTerm=SINGLE_MEMBER_TERM,
            raftAppliedIndex=self.applied_index,
        )

    def store_size(self) -> int:
        """Bytes the history would take on disk, as etcd stores it (revision key + value)."""
        return sum(17 + len(apply.encode(entry.kv)) for entry in self.store.history.values())

    def member_list(self) -> rpc_pb2.MemberListResponse:
        # etcd's cluster service stamps no revision: membership is not part of the key space.
        response = rpc_pb2.MemberListResponse(header=self.header())
        for member in self.cluster.members:
            response.members.add(
                ID=member.id,
                name=member.name,
                peerURLs=member.peer_urls,
                clientURLs=member.client_urls,
                isLearner=member.is_learner,
            )
        return response

    def alarms(self) -> rpc_pb2.AlarmResponse:
        # No alarm can be raised yet: the NOSPACE alarm comes with the quota in chapter 2.
        # etcd 3.4 sends its alarm list with no header at all.
        return rpc_pb2.AlarmResponse()
