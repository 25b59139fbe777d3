"""`KVClient` against an in-process kv member: etcd's requests in, etcd's responses out.

The server runs in the test's own event loop (the `client` fixture of the root ``conftest.py``).
Errors arrive as `EtcdError` with etcd's gRPC code and message, as Go clients see them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from kv.client import ChannelOption, KVClient, key_after, prefix_end
from kv.server.errors import EtcdError

StartServer = Callable[..., Awaitable[str]]  # the `start_server` fixture (root conftest.py)

# --- prefix_end: clientv3's GetPrefixRangeEnd ---------------------------------------------------


def test_prefix_end_increments_the_last_byte() -> None:
    assert prefix_end(b"foo") == b"fop"


def test_prefix_end_drops_trailing_ff_bytes_before_incrementing() -> None:
    assert prefix_end(b"a\xff\xff") == b"b"


def test_prefix_end_of_only_ff_bytes_is_the_end_of_the_key_space() -> None:
    assert prefix_end(b"\xff\xff") == b"\x00"


def test_prefix_end_of_the_empty_prefix_is_the_end_of_the_key_space() -> None:
    assert prefix_end(b"") == b"\x00"


def test_prefix_end_accepts_str() -> None:
    assert prefix_end("dir/") == b"dir0"


# --- key_after: where the next page of a range begins -------------------------------------------


def test_key_after_is_the_key_with_a_zero_byte_appended() -> None:
    assert key_after(b"foo") == b"foo\x00"


def test_no_key_sorts_between_a_key_and_key_after_it() -> None:
    assert b"foo" < key_after(b"foo") < b"foo\x00\x00" < b"fop"


async def test_paging_with_limit_and_key_after_reads_every_key_once(client: KVClient) -> None:
    keys = [f"page/{i:02}".encode() for i in range(7)]
    for key in keys:
        await client.put(key, b"v")
    seen: list[bytes] = []
    start, end = b"page/", prefix_end(b"page/")
    while True:
        page = await client.range(start, end, limit=3)
        seen.extend(kv.key for kv in page.kvs)
        if not page.more:
            break
        start = key_after(page.kvs[-1].key)
    assert seen == keys


# --- KV round trips ----------------------------------------------------------------------------


async def test_a_put_key_can_be_read_back(client: KVClient) -> None:
    await client.put(b"greeting", b"hello")
    kv = await client.get(b"greeting")
    assert kv is not None
    assert (kv.key, kv.value, kv.version) == (b"greeting", b"hello", 1)


async def test_str_keys_and_values_are_utf8_bytes(client: KVClient) -> None:
    await client.put("clé", "välue")
    kv = await client.get("clé".encode())
    assert kv is not None and kv.value == "välue".encode()


async def test_get_of_a_missing_key_is_none(client: KVClient) -> None:
    assert await client.get("missing") is None


async def test_each_put_adds_one_revision(client: KVClient) -> None:
    first = await client.put("a", "1")
    second = await client.put("a", "2")
    assert (first.header.revision, second.header.revision) == (2, 3)


async def test_put_with_prev_kv_returns_the_old_pair(client: KVClient) -> None:
    await client.put("a", "old")
    response = await client.put("a", "new", prev_kv=True)
    assert response.prev_kv.value == b"old"


async def test_a_prefix_range_returns_exactly_the_keys_under_the_prefix(client: KVClient) -> None:
    for key in ("dir/a", "dir/b", "dir0", "dis"):
        await client.put(key, "x")
    response = await client.range("dir/", prefix_end("dir/"))
    assert [kv.key for kv in response.kvs] == [b"dir/a", b"dir/b"]
    assert response.count == 2


async def test_range_with_limit_reports_more(client: KVClient) -> None:
    for key in ("a", "b", "c"):
        await client.put(key, "x")
    response = await client.range("a", "d", limit=2)
    assert ([kv.key for kv in response.kvs], response.count, response.more) == (
        [b"a", b"b"],
        3,
        True,
    )


async def test_delete_range_removes_the_keys_and_returns_them(client: KVClient) -> None:
    await client.put("a", "1")
    await client.put("b", "2")
    response = await client.delete_range("a", "c", prev_kv=True)
    assert response.deleted == 2
    assert [kv.key for kv in response.prev_kvs] == [b"a", b"b"]
    assert await client.get("a") is None


async def test_an_old_revision_stays_readable_until_compacted(client: KVClient) -> None:
    await client.put("a", "1")  # revision 2
    await client.put("a", "2")  # revision 3
    old = await client.get("a", revision=2)
    assert old is not None and old.value == b"1"
    await client.compact(3)
    with pytest.raises(EtcdError) as caught:
        await client.get("a", revision=2)
    assert caught.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert caught.value.message == "etcdserver: mvcc: required revision has been compacted"


# --- errors ------------------------------------------------------------------------------------


async def test_an_empty_key_is_refused_with_etcds_code_and_message(client: KVClient) -> None:
    with pytest.raises(EtcdError) as caught:
        await client.put(b"", b"x")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == "etcdserver: key is not provided"


async def test_a_future_revision_is_refused_with_etcds_code_and_message(
    client: KVClient,
) -> None:
    with pytest.raises(EtcdError) as caught:
        await client.get("a", revision=100)
    assert caught.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert caught.value.message == "etcdserver: mvcc: required revision is a future revision"


async def test_the_grpc_error_is_kept_as_the_cause(client: KVClient) -> None:
    with pytest.raises(EtcdError) as caught:
        await client.compact(100)
    assert isinstance(caught.value.__cause__, grpc.aio.AioRpcError)


async def test_a_closed_port_is_unavailable(free_port: int) -> None:
    async with KVClient(f"127.0.0.1:{free_port}") as nobody:
        with pytest.raises(EtcdError) as caught:
            await nobody.status()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.fixture
async def silent_endpoint() -> AsyncIterator[str]:
    """A TCP listener that accepts connections and never answers: a hung server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def test_a_call_that_gets_no_answer_fails_after_its_timeout(silent_endpoint: str) -> None:
    async with KVClient(silent_endpoint) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(EtcdError) as caught:
            await client.get("a", timeout=0.3)
        elapsed = asyncio.get_running_loop().time() - started
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 3


# --- channel options ---------------------------------------------------------------------------


async def connections_opened(options: list[ChannelOption]) -> int:
    """How many TCP connections two clients with ``options`` open to one endpoint.

    The endpoint accepts and never answers, so each client's call ends at its deadline; what
    counts is how many connections were accepted by then.
    """
    accepted = 0

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.read()  # until the client hangs up
        writer.close()

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    endpoint = f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    async with (
        listener,
        KVClient(endpoint, options=options) as first,
        KVClient(endpoint, options=options) as second,
    ):
        outcomes = await asyncio.gather(
            first.status(timeout=0.2), second.status(timeout=0.2), return_exceptions=True
        )
    assert all(isinstance(o, EtcdError) for o in outcomes), outcomes
    return accepted


async def test_clients_share_a_connection_unless_given_a_local_subchannel_pool() -> None:
    assert await connections_opened([]) == 1
    assert await connections_opened([("grpc.use_local_subchannel_pool", 1)]) == 2


async def test_an_option_replaces_the_clients_default(client: KVClient, kv_server: str) -> None:
    await client.put("big", b"x" * 100)
    options: list[ChannelOption] = [("grpc.max_receive_message_length", 64)]
    async with KVClient(kv_server, options=options) as small:
        with pytest.raises(EtcdError) as caught:
            await small.get("big")
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- limits: --max-request-bytes, and gRPC's own limit 512 KiB above it -------------------------


async def test_a_request_over_max_request_bytes_is_too_large(start_server: StartServer) -> None:
    async with KVClient(await start_server(max_request_bytes=1024)) as client:
        with pytest.raises(EtcdError) as caught:
            await client.put("big", b"x" * 2048)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == "etcdserver: request is too large"


async def test_a_request_past_the_grpc_limit_is_resource_exhausted(
    start_server: StartServer,
) -> None:
    async with KVClient(await start_server(max_request_bytes=1024)) as client:
        with pytest.raises(EtcdError) as caught:
            await client.put("big", b"x" * (1024 + 512 * 1024 + 1))
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_two_members_in_one_process_share_nothing(start_server: StartServer) -> None:
    async with (
        KVClient(await start_server()) as first,
        KVClient(await start_server()) as second,
    ):
        await first.put("a", "1")
        assert await second.get("a") is None


# --- maintenance and cluster -------------------------------------------------------------------


async def test_status_names_the_member_that_answered(client: KVClient) -> None:
    status = await client.status()
    members = await client.member_list()
    assert [member.ID for member in members.members] == [status.header.member_id]
    assert status.leader == status.header.member_id


async def test_member_list_shows_the_advertised_client_url(
    client: KVClient, kv_server: str
) -> None:
    members = await client.member_list()
    assert [list(member.clientURLs) for member in members.members] == [[f"http://{kv_server}"]]


async def test_hash_kv_reports_no_compaction_before_the_first(client: KVClient) -> None:
    assert (await client.hash_kv()).compact_revision == -1


async def test_a_fresh_member_has_no_alarms(client: KVClient) -> None:
    assert list((await client.alarm_list()).alarms) == []
