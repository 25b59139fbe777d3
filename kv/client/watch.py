"""`Watch`: one Watch stream carrying one watcher, as `kv.client.KVClient.watch` opens it
(chapter 8).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.server.errors import EtcdError


class Watch:
    """One Watch stream carrying one watcher (`KVClient.watch`): an async iterator of etcd's
    ``WatchResponse``s, the ``created`` reply first; it ends after a ``canceled`` reply (a
    cancel asked for, or a compaction past the start: ``compact_revision`` says which).

    A failure of the stream (the member died, refused a require-leader stream) raises
    `EtcdError` from the iteration.
    """

    def __init__(
        self,
        stub: rpc_pb2_grpc.WatchAsyncStub,
        create: rpc_pb2.WatchCreateRequest,
        metadata: Sequence[tuple[str, str]],
    ) -> None:
        self.request = create
        #: The server's id for the watcher, once its ``created`` reply came.
        self.watch_id: int | None = None
        self._outgoing: asyncio.Queue[rpc_pb2.WatchRequest | None] = asyncio.Queue()
        self._outgoing.put_nowait(rpc_pb2.WatchRequest(create_request=create))
        self._call = stub.Watch(self._requests(), metadata=tuple(metadata))

    async def _requests(self) -> AsyncIterator[rpc_pb2.WatchRequest]:
        while (request := await self._outgoing.get()) is not None:
            yield request

    def __aiter__(self) -> AsyncIterator[rpc_pb2.WatchResponse]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[rpc_pb2.WatchResponse]:
        try:
            async for response in self._call:
                if response.created:
                    self.watch_id = response.watch_id
                yield response
                if response.canceled:
                    return
        except grpc.aio.AioRpcError as error:
            raise EtcdError.of_failed_call(error) from error
        finally:
            self.close()

    def cancel(self) -> None:
        """Ask the server to cancel the watcher: it answers ``canceled`` and the iteration
        ends (etcd's ``WatchCancelRequest``). Before the ``created`` reply, drops the stream."""
        if self.watch_id is None:
            self.close()
            return
        cancel = rpc_pb2.WatchCancelRequest(watch_id=self.watch_id)
        self._outgoing.put_nowait(rpc_pb2.WatchRequest(cancel_request=cancel))

    def close(self) -> None:
        """Drop the stream at once (the server forgets its watchers)."""
        self._outgoing.put_nowait(None)
        self._call.cancel()
