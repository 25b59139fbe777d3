"""What a client gets for RPCs kv does not serve yet: UNIMPLEMENTED, never a hang or a crash."""

from __future__ import annotations

import grpc
import pytest

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc


async def call_status(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value.code(), raised.value.details() or ""


async def test_an_rpc_of_a_later_chapter_is_unimplemented_and_names_the_chapter(
    kv_server: str,
) -> None:
    async with grpc.aio.insecure_channel(kv_server) as channel:
        code, details = await call_status(rpc_pb2_grpc.KVStub(channel).Txn(rpc_pb2.TxnRequest()))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert details == "kv: Txn arrives in chapter 8"


async def test_a_streaming_rpc_of_a_later_chapter_is_unimplemented(kv_server: str) -> None:
    async with grpc.aio.insecure_channel(kv_server) as channel:
        stream = rpc_pb2_grpc.WatchStub(channel).Watch()
        code, _ = await call_status(stream.read())
    assert code == grpc.StatusCode.UNIMPLEMENTED


async def test_a_service_kv_does_not_register_is_unimplemented(kv_server: str) -> None:
    async with grpc.aio.insecure_channel(kv_server) as channel:
        grant = rpc_pb2_grpc.LeaseStub(channel).LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=5))
        code, _ = await call_status(grant)
    assert code == grpc.StatusCode.UNIMPLEMENTED


async def test_the_server_keeps_serving_after_unimplemented_calls(kv_server: str) -> None:
    async with grpc.aio.insecure_channel(kv_server) as channel:
        await call_status(rpc_pb2_grpc.KVStub(channel).Txn(rpc_pb2.TxnRequest()))
        response = await rpc_pb2_grpc.KVStub(channel).Put(
            rpc_pb2.PutRequest(key=b"still", value=b"here")
        )
    assert response.header.revision == 2
