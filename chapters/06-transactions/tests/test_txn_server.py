"""Txn on a real `kv serve` member (chapter 6): through the log when it writes, without it when
it only reads, refused by NOSPACE only when it puts."""

from __future__ import annotations

from kv.api.etcdserverpb import rpc_pb2
from kv.client import KVClient, compare, delete_op, put_op, range_op, txn_op
from kv.server.errors import EtcdError


async def test_a_compare_and_swap_succeeds_once(client: KVClient) -> None:
    await client.put("lock", "free")
    swap = [compare("lock", "value", "=", "free")], [put_op("lock", "mine")]
    first, second = await client.txn(*swap), await client.txn(*swap)
    assert first.succeeded and not second.succeeded
    assert first.header.revision == second.header.revision == 3


async def test_a_read_only_txn_is_not_written_to_the_log(client: KVClient) -> None:
    await client.put("a", "1")
    before = (await client.status()).raftIndex
    read = await client.txn([compare("a", "version", "=", 1)], [range_op("a")], [range_op("b")])
    serial = await client.txn(success=[range_op("a", serializable=True)])
    assert read.responses[0].response_range.kvs[0].value == b"1"
    assert serial.responses[0].response_range.count == 1
    assert (await client.status()).raftIndex == before
    await client.txn(success=[txn_op()])  # a nested txn counts as a write: logged
    assert (await client.status()).raftIndex == before + 1


async def test_the_header_names_the_member_and_the_term(client: KVClient) -> None:
    done = await client.txn(success=[put_op("a", "1")])
    status = await client.status()
    assert done.header.member_id == status.header.member_id
    assert done.header.raft_term == status.raftTerm and done.header.revision == 2


async def test_nospace_refuses_a_txn_that_puts_but_not_one_that_deletes(client: KVClient) -> None:
    await client.put("a", "1")
    await client.alarm(rpc_pb2.AlarmRequest.ACTIVATE, alarm=rpc_pb2.AlarmType.NOSPACE, member_id=1)
    try:
        await client.txn(success=[put_op("b", "1")])
    except EtcdError as error:
        assert error.message == "etcdserver: mvcc: database space exceeded"
    else:
        raise AssertionError("a txn with a put was not refused")
    deleted = await client.txn(success=[delete_op("a")])
    nested = await client.txn(success=[txn_op(success=[put_op("n", "1")])])  # etcd: no cost
    assert deleted.header.revision == 3 and nested.header.revision == 4
