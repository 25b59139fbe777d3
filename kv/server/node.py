"""The node: one member's state and the requests it serves (chapters 1 and 2).

A node validates a request, has it carried out, and stamps the answer with a
`ResponseHeader` saying who answered (cluster and member id), at which revision, in which
Raft term. Reads are served from the store at once. Writes, from chapter 2 on, go through the
`DurableLog`: logged and fsynced first, applied after, answered last. Chapter 3 puts Raft in
the log's place. The services in `kv.server.services` only ever talk to this class.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from google.protobuf.message import Message

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest, RequestHeader
from kv.membership import Cluster, Member
from kv.mvcc import MvccError, hash_kv
from kv.server import apply, errors, validate
from kv.server.data_dir import Recovered
from kv.server.durable_log import SINGLE_MEMBER_TERM
from kv.server.errors import EtcdError

# The etcd API kv implements; clients compare the major.minor of Status.version.
API_VERSION = "3.4.0"


class Node:
    """A single member serving etcd's KV, Maintenance and Cluster requests."""

    def __init__(
        self,
        *,
        name: str,
        cluster: Cluster,
        client_urls: tuple[str, ...],
        max_request_bytes: int,
        recovered: Recovered,
    ) -> None:
        self.log = recovered.log
        self.store = recovered.log.machine.store
        # The data directory's ids win: a restarted member keeps the identity it was born with.
        self.member: Member = replace(
            cluster.member_named(name), id=recovered.member_id, client_urls=client_urls
        )
        self.cluster = replace(
            cluster,
            members=tuple(self.member if m.name == name else m for m in cluster.members),
        )
        self.cluster_id = recovered.cluster_id
        self.max_request_bytes = max_request_bytes
        # etcd's request ids start from the member id, so ids of different members differ.
        self._request_ids = itertools.count((self.member.id & 0xFFFF) << 48)

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

    async def put(self, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        validate.check_put(request)
        validate.check_request_size(request, self.max_request_bytes)
        response = await self._write(InternalRaftRequest(put=request))
        assert isinstance(response, rpc_pb2.PutResponse)
        return response

    # --8<-- [end:requests]

    async def delete_range(
        self, request: rpc_pb2.DeleteRangeRequest
    ) -> rpc_pb2.DeleteRangeResponse:
        validate.check_delete_range(request)
        validate.check_request_size(request, self.max_request_bytes)
        response = await self._write(InternalRaftRequest(delete_range=request))
        assert isinstance(response, rpc_pb2.DeleteRangeResponse)
        return response

    async def compact(self, request: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        validate.check_request_size(request, self.max_request_bytes)
        response = await self._write(InternalRaftRequest(compaction=request))
        assert isinstance(response, rpc_pb2.CompactionResponse)
        return response

    # --8<-- [start:write]
    async def _write(self, request: InternalRaftRequest) -> Message:
        """Send a write through the log; answer once it is durable and applied."""
        request.header.CopyFrom(RequestHeader(ID=next(self._request_ids)))
        result = await self.log.propose(request)
        if isinstance(result, EtcdError):
            raise result
        result.header.CopyFrom(self.header(result.header.revision))  # type: ignore[attr-defined]
        return result

    # --8<-- [end:write]

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
        return rpc_pb2.StatusResponse(
            header=self.header(self.store.current_revision),
            version=API_VERSION,
            dbSize=self.log.backend.size_bytes,
            dbSizeInUse=self.log.backend.size_in_use_bytes,
            leader=self.member.id,
            raftIndex=self.log.last_index,
            raftTerm=SINGLE_MEMBER_TERM,
            raftAppliedIndex=self.log.machine.applied_index,
        )

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
