"""Simulated clients and the history they record for the linearizability checker.

The model of a client, and of the member that serves it, is etcd's, kept as simple as it
can be while staying faithful:

* A client sends each request to one member (its *endpoint*) over a link that takes a
  little time but never fails. One request at a time, like a synchronous client.
* **Writes** (put, delete): the member wraps the request in an ``InternalRaftRequest`` with
  a fresh request id and proposes it to its Raft node. A follower's node forwards the
  proposal to the leader (etcd does exactly this; the client is not redirected). The member
  answers when *it* applies the entry carrying that id -- with the state machine's result,
  as etcd's ``wait.Wait`` does -- so the answer reflects the write's place in the log.
* **Reads** (get) are linearizable through ReadIndex (thesis §6.4): the member asks its
  Raft node for a read index (a follower's node asks the leader), waits until its state
  machine has applied up to it, and reads its own store. It asks again every
  ``read_retry_ms`` until confirmed (etcd 3.5's read loop does the same).
* **Refusals are retried, nothing else.** If the member is down (connection refused) or
  its node refuses the proposal at once (no leader known: nothing was appended anywhere),
  the request certainly did not happen, and the client tries the next endpoint after
  ``retry_backoff_ms``. Once a member has accepted a write its outcome is unknown until
  answered: the proposal may be lost with a deposed leader, or committed and applied
  later. Trying it again could apply it twice, so the client does not (neither does
  clientv3 for writes). When ``request_timeout_ms`` runs out the operation stays *pending*
  in the history, and the client continues as a new process (Jepsen's rule: a process with
  an operation of unknown outcome never issues another one).

Each request becomes one `ClientOp`; `ClientOp.operation` turns it into the
`kv.linearizability.Operation` the checker reads (definite failures are left out: they did
nothing).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf.message import Message as ProtoMessage

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.linearizability import (
    CompareAndSet,
    CompareAndSetResult,
    Delete,
    DeleteResult,
    Get,
    GetResult,
    Operation,
    Put,
    PutResult,
)
from kv.linearizability.leases import (
    LeaseGrant,
    LeaseGrantResult,
    LeaseInput,
    LeaseModel,
    LeaseOutput,
    LeasePut,
    LeasePutResult,
    LeaseRevoke,
    LeaseRevokeResult,
)
from kv.linearizability.txn import Compare, Target, Txn, TxnOp, TxnPut, TxnResult
from kv.server import errors
from kv.server.errors import EtcdError

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster

#: The model that describes operations in events and messages.
_DESCRIBE = LeaseModel()


class OpState(enum.Enum):
    IN_FLIGHT = "in flight"
    OK = "ok"  # answered
    FAILED = "failed"  # certainly did nothing (refused everywhere, or an etcd error)
    TIMED_OUT = "timed out"  # outcome unknown: pending in the history


@dataclass(slots=True)
class ClientOp:
    """One request of one client, from call to answer (or give-up)."""

    client: int  # the client's number (c1, c2, ...)
    process: int  # the history's client id: a new one after every unknown outcome
    input: LeaseInput
    call_time: int
    deadline: int
    state: OpState = OpState.IN_FLIGHT
    return_time: int | None = None
    output: LeaseOutput | None = None
    #: Why it failed, for a FAILED operation.
    error: str | None = None
    #: The member of the latest attempt.
    node: int = 0
    attempts: int = 0
    #: Did some member accept it (after which it is never retried)?
    accepted: bool = False

    @property
    def done(self) -> bool:
        return self.state is not OpState.IN_FLIGHT

    def operation(self) -> Operation[LeaseInput, LeaseOutput] | None:
        """This request for the checker; None if it certainly did nothing."""
        if self.state is OpState.FAILED:
            return None
        if self.state is OpState.OK:
            return Operation(
                self.process, self.call_time, self.return_time, self.input, self.output
            )
        # In flight or timed out: it may take effect at any time from its call on.
        return Operation(self.process, self.call_time, None, self.input, None)

    def __str__(self) -> str:
        described = _DESCRIBE.describe_operation(self.input, self.output)
        if self.state is OpState.OK:
            when = f"{self.call_time}-{self.return_time}ms"
        else:
            when = f"{self.call_time}ms-, {self.state.value}"
        return f"c{self.client} {described} [{when}, n{self.node}]"


class Client:
    """A client of the simulated cluster. Its calls return at once with a `ClientOp`; the
    answer arrives as virtual time runs (``op.done``)."""

    def __init__(self, cluster: Cluster, client_id: int, endpoints: list[int]) -> None:
        self.cluster = cluster
        self.id = client_id
        self.endpoints = endpoints
        #: The history's client id (see `ClientOp.process`).
        self.process = cluster.new_process()
        #: The endpoint of the next attempt (rotates on refusals).
        self.endpoint = cluster.client_rng.randrange(len(endpoints))
        self.current: ClientOp | None = None
        #: Called when an operation of this client finishes (the workload's next move).
        self.on_done: Callable[[ClientOp], None] | None = None
        #: Does the client follow membership changes (`follow`)? Set by the cluster.
        self.follows_members = False

    def __repr__(self) -> str:
        return f"Client(c{self.id}, endpoints={self.endpoints}, current={self.current})"

    def follow(self, members: list[int]) -> None:
        """The voting members changed: talk to ``members`` from now on (clientv3's endpoint
        sync), staying with the current endpoint if it is still one of them."""
        if not members:
            return
        current = self.endpoints[self.endpoint]
        self.endpoint = members.index(current) if current in members else 0
        self.endpoints = list(members)

    @property
    def busy(self) -> bool:
        return self.current is not None

    def put(self, key: str, value: str) -> ClientOp:
        return self.cluster.traffic.start_request(self, Put(key, value))

    def get(self, key: str) -> ClientOp:
        return self.cluster.traffic.start_request(self, Get(key))

    def delete(self, key: str) -> ClientOp:
        return self.cluster.traffic.start_request(self, Delete(key))

    def compare_and_set(self, key: str, expected: str | None, new: str) -> ClientOp:
        """A one-key Txn (chapter 6): put ``new`` if ``key`` holds ``expected`` (None: absent)."""
        return self.cluster.traffic.start_request(self, CompareAndSet(key, expected, new))

    def txn(self, txn: Txn) -> ClientOp:
        """A multi-key Txn (chapter 6): compares, then one branch's puts and deletes."""
        return self.cluster.traffic.start_request(self, txn)

    def lease_grant(self, lease: int, ttl: int) -> ClientOp:
        """Grant lease ``lease`` (chosen by the client, as etcd allows) for ``ttl`` seconds."""
        return self.cluster.traffic.start_request(self, LeaseGrant(lease, ttl))

    def lease_put(self, key: str, value: str, lease: int) -> ClientOp:
        """Put ``key`` attached to ``lease`` (chapter 7)."""
        return self.cluster.traffic.start_request(self, LeasePut(key, value, lease))

    def lease_revoke(self, lease: int) -> ClientOp:
        """Revoke ``lease``: it goes, and every key attached to it (chapter 7)."""
        return self.cluster.traffic.start_request(self, LeaseRevoke(lease))


def to_request(input: LeaseInput) -> InternalRaftRequest | bytes:
    """A write as the ``InternalRaftRequest`` the member proposes, or a read's key."""
    match input:
        case Put(key, value):
            return InternalRaftRequest(put=rpc_pb2.PutRequest(key=_bytes(key), value=_bytes(value)))
        case Delete(key):
            return InternalRaftRequest(delete_range=rpc_pb2.DeleteRangeRequest(key=_bytes(key)))
        case Get(key):
            return _bytes(key)
        case CompareAndSet(key, expected, new):
            return InternalRaftRequest(txn=_compare_and_set(_bytes(key), expected, _bytes(new)))
        case Txn():
            return InternalRaftRequest(txn=_txn(input))
        case LeaseGrant(lease, ttl):
            return InternalRaftRequest(lease_grant=rpc_pb2.LeaseGrantRequest(ID=lease, TTL=ttl))
        case LeasePut(key, value, lease):
            put = rpc_pb2.PutRequest(key=_bytes(key), value=_bytes(value), lease=lease)
            return InternalRaftRequest(put=put)
        case LeaseRevoke(lease):
            return InternalRaftRequest(lease_revoke=rpc_pb2.LeaseRevokeRequest(ID=lease))
    raise TypeError(f"the simulator's clients do not send {input!r}")


def to_output(input: LeaseInput, result: ProtoMessage | EtcdError) -> LeaseOutput | str:
    """The member's answer as the checker's output, or an etcd error's message.

    The lease errors a correct store answers in some states ("lease already exists",
    "requested lease not found") are outputs the model checks, not failures: a put refused
    for a lease that does exist is a bug to catch.
    """
    if isinstance(result, EtcdError):
        return _refusal(input, result)
    revision = getattr(getattr(result, "header", None), "revision", None)
    match input, result:
        case Put(), rpc_pb2.PutResponse():
            return PutResult(revision=revision)
        case Delete(), rpc_pb2.DeleteRangeResponse():
            return DeleteResult(deleted=result.deleted, revision=revision)
        case Get(), rpc_pb2.RangeResponse():
            value = result.kvs[0].value.decode() if result.kvs else None
            return GetResult(value, revision=revision)
        case CompareAndSet(), rpc_pb2.TxnResponse():
            return CompareAndSetResult(result.succeeded, revision=revision)
        case Txn(), rpc_pb2.TxnResponse():
            return TxnResult(result.succeeded, revision=revision)
        case LeaseGrant(), rpc_pb2.LeaseGrantResponse():
            return LeaseGrantResult(True, revision=revision)
        case LeasePut(), rpc_pb2.PutResponse():
            return LeasePutResult(True, revision=revision)
        case LeaseRevoke(), rpc_pb2.LeaseRevokeResponse():
            return LeaseRevokeResult(True, revision=revision)
    raise TypeError(f"{type(result).__name__} does not answer {input!r}")


def _refusal(input: LeaseInput, error: EtcdError) -> LeaseOutput | str:
    """A lease operation's refusal as its output; any other error as its message."""
    match input:
        case LeaseGrant() if error == errors.LEASE_EXIST:
            return LeaseGrantResult(False)
        case LeasePut() if error == errors.LEASE_NOT_FOUND:
            return LeasePutResult(False)
        case LeaseRevoke() if error == errors.LEASE_NOT_FOUND:
            return LeaseRevokeResult(False)
    return str(error)


def _bytes(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def _compare_and_set(key: bytes, expected: str | bytes | None, new: bytes) -> rpc_pb2.TxnRequest:
    """``if value(key) == expected then put(key, new)``; "absent" is ``create_revision == 0``."""
    compare = rpc_pb2.Compare(key=key, result=rpc_pb2.Compare.EQUAL)
    if expected is None:
        compare.target, compare.create_revision = rpc_pb2.Compare.CREATE, 0
    else:
        compare.target, compare.value = rpc_pb2.Compare.VALUE, _bytes(expected)
    put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=new))
    return rpc_pb2.TxnRequest(compare=[compare], success=[put])


def _txn(txn: Txn) -> rpc_pb2.TxnRequest:
    """The model's txn as etcd's ``TxnRequest``."""
    return rpc_pb2.TxnRequest(
        compare=[_compare(compare) for compare in txn.compares],
        success=[_request_op(op) for op in txn.success],
        failure=[_request_op(op) for op in txn.failure],
    )


def _compare(compare: Compare) -> rpc_pb2.Compare:
    proto = rpc_pb2.Compare(key=_bytes(compare.key), result=rpc_pb2.Compare.EQUAL)
    match compare.target, compare.expected:
        case Target.VALUE, str() | bytes() as value:
            proto.target, proto.value = rpc_pb2.Compare.VALUE, _bytes(value)
        case Target.VERSION, int(version):
            proto.target, proto.version = rpc_pb2.Compare.VERSION, version
        case Target.MOD, int(revision):
            proto.target, proto.mod_revision = rpc_pb2.Compare.MOD, revision
        case _:
            raise TypeError(f"{compare!r} compares a {compare.target.value} with the wrong type")
    return proto


def _request_op(op: TxnOp) -> rpc_pb2.RequestOp:
    if isinstance(op, TxnPut):
        return rpc_pb2.RequestOp(
            request_put=rpc_pb2.PutRequest(key=_bytes(op.key), value=_bytes(op.value))
        )
    return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=_bytes(op.key)))
