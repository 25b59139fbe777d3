"""What a client gets for RPCs kv does not serve yet: UNIMPLEMENTED, never a hang or a crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc


async def call_status(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value.code(), raised.value.details() or ""


#: One RPC of each service kv does not serve, called as a client calls it, and the answer.
NOT_SERVED_CALLS: list[tuple[str, Callable[[grpc.aio.Channel], object], str]] = [
    (
        "unary AuthEnable",
        lambda ch: rpc_pb2_grpc.AuthStub(ch).AuthEnable(rpc_pb2.AuthEnableRequest()),
        "kv: AuthEnable is not planned (kv has no users, roles or authentication)",
    ),
]


@pytest.mark.parametrize(
    ("call", "expected"), [c[1:] for c in NOT_SERVED_CALLS], ids=[c[0] for c in NOT_SERVED_CALLS]
)
async def test_every_rpc_of_a_service_kv_does_not_serve_says_why(
    kv_server: str, call: Callable[[grpc.aio.Channel], object], expected: str
) -> None:
    async with grpc.aio.insecure_channel(kv_server) as channel:
        assert await call_status(call(channel)) == (grpc.StatusCode.UNIMPLEMENTED, expected)


async def test_a_method_of_no_etcd_service_gets_grpcs_own_answer(kv_server: str) -> None:
    async with grpc.aio.insecure_channel(kv_server) as channel:
        method: Any = channel.unary_unary("/nosuch.Service/Method")
        assert await call_status(method(b"")) == (
            grpc.StatusCode.UNIMPLEMENTED,
            "Method not found!",
        )


async def test_the_server_keeps_serving_after_unimplemented_calls(kv_server: str) -> None:
    async with grpc.aio.insecure_channel(kv_server) as channel:
        await call_status(rpc_pb2_grpc.AuthStub(channel).AuthEnable(rpc_pb2.AuthEnableRequest()))
        response = await rpc_pb2_grpc.KVStub(channel).Put(
            rpc_pb2.PutRequest(key=b"still", value=b"here")
        )
    assert response.header.revision == 2
