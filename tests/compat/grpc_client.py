"""A thin asyncio gRPC client for the requests etcdctl 3.4 cannot send, and the comparison helper.

TODO(kv.client): this adapter mirrors the signatures of ``kv.client.KVClient`` (``range``,
``put``, ``delete_range``, ``compact``, ``hash_kv``; errors carry ``code`` and ``message``) so
that, once ``kv/client.py`` is committed, `connect` can return ``KVClient(endpoint)`` and
`RpcFailure` can become ``kv.server.errors.EtcdError``; then delete the adapter class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.compat.normalise import normalise_value
from tests.compat.scenario import ScenarioMismatch, ServerPair, mismatch_message, render
from tests.compat.servers import Server

Response = TypeVar("Response")
Bytes = str | bytes

TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RpcFailure(Exception):
    """A call that ended with a gRPC status other than OK: etcd's code and exact message."""

    code: grpc.StatusCode
    message: str


def _bytes(data: Bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


class CompatClient:
    """One grpc.aio channel to one endpoint, with etcd's KV and Maintenance calls."""

    def __init__(self, endpoint: str) -> None:
        self._channel = grpc.aio.insecure_channel(endpoint)
        self._kv = rpc_pb2_grpc.KVStub(self._channel)
        self._maintenance = rpc_pb2_grpc.MaintenanceStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._channel.close()

    async def _call(self, method: Callable[..., Awaitable[Response]], request: Message) -> Response:
        try:
            return await method(request, timeout=TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise RpcFailure(error.code(), error.details() or "") from error

    async def range(
        self,
        key: Bytes,
        range_end: Bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
        serializable: bool = False,
        sort_order: rpc_pb2.RangeRequest.SortOrder = rpc_pb2.RangeRequest.NONE,
        sort_target: rpc_pb2.RangeRequest.SortTarget = rpc_pb2.RangeRequest.KEY,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
    ) -> rpc_pb2.RangeResponse:
        request = rpc_pb2.RangeRequest(
            key=_bytes(key),
            range_end=_bytes(range_end),
            revision=revision,
            limit=limit,
            count_only=count_only,
            keys_only=keys_only,
            serializable=serializable,
            sort_order=sort_order,
            sort_target=sort_target,
            min_mod_revision=min_mod_revision,
            max_mod_revision=max_mod_revision,
            min_create_revision=min_create_revision,
            max_create_revision=max_create_revision,
        )
        return await self._call(self._kv.Range, request)

    async def put(
        self,
        key: Bytes,
        value: Bytes,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> rpc_pb2.PutResponse:
        request = rpc_pb2.PutRequest(
            key=_bytes(key),
            value=_bytes(value),
            lease=lease,
            prev_kv=prev_kv,
            ignore_value=ignore_value,
            ignore_lease=ignore_lease,
        )
        return await self._call(self._kv.Put, request)

    async def delete_range(
        self, key: Bytes, range_end: Bytes = b"", *, prev_kv: bool = False
    ) -> rpc_pb2.DeleteRangeResponse:
        request = rpc_pb2.DeleteRangeRequest(
            key=_bytes(key), range_end=_bytes(range_end), prev_kv=prev_kv
        )
        return await self._call(self._kv.DeleteRange, request)

    async def compact(self, revision: int, *, physical: bool = False) -> rpc_pb2.CompactionResponse:
        request = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        return await self._call(self._kv.Compact, request)

    async def hash_kv(self, revision: int = 0) -> rpc_pb2.HashKVResponse:
        return await self._call(self._maintenance.HashKV, rpc_pb2.HashKVRequest(revision=revision))


def connect(server: Server) -> CompatClient:
    """A client for `server`. TODO(kv.client): ``return KVClient(server.endpoint)``."""
    return CompatClient(server.endpoint)


Call = Callable[[CompatClient], Awaitable[Message]]


def outcome(response: Message | RpcFailure, who: Server) -> dict[str, Any]:
    """A comparable, normalised form: the response as MessageToDict (proto field names, 64-bit
    ints as strings, bytes as base64), or the error's gRPC code name and exact message."""
    if isinstance(response, RpcFailure):
        return {"error": {"code": response.code.name, "message": response.message}}
    as_dict = MessageToDict(response, preserving_proto_field_name=True)
    normalised: dict[str, Any] = normalise_value(as_dict, who)
    return normalised


class GrpcComparison:
    """Send the same calls to the reference etcd and the subject; every outcome must match.

    ``await cmp.step("label", lambda c: c.range(...))`` runs the call on both servers and
    returns the (equal) normalised outcome; the first difference fails with both side by side.
    """

    def __init__(self, pair: ServerPair) -> None:
        self.pair = pair
        self.reference = connect(pair.reference)
        self.subject = connect(pair.subject)
        self.labels: list[str] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.reference.__aexit__(exc_type, exc, tb)
        await self.subject.__aexit__(exc_type, exc, tb)

    @staticmethod
    async def _run(call: Call, client: CompatClient) -> Message | RpcFailure:
        try:
            return await call(client)
        except RpcFailure as failure:
            return failure

    async def step(self, label: str, call: Call) -> dict[str, Any]:
        __tracebackhide__ = True  # pytest: show the side-by-side message, not this helper
        self.labels.append(label)
        ref = outcome(await self._run(call, self.reference), self.pair.reference)
        sub = outcome(await self._run(call, self.subject), self.pair.subject)
        if ref != sub:
            listing = "\n".join(
                f"{'>>' if i == len(self.labels) - 1 else '  '} {i + 1:2}. {text}"
                for i, text in enumerate(self.labels)
            )
            raise ScenarioMismatch(
                mismatch_message(
                    self.pair,
                    f"step {len(self.labels)} ({label})",
                    render(ref),
                    render(sub),
                    listing,
                )
            )
        return ref
