"""`KeepAlive`: one LeaseKeepAlive stream for one lease, as
`kv.client.KVClient.lease_keep_alive` opens it (chapter 7).
"""

from __future__ import annotations

import grpc

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.server.errors import EtcdError


class KeepAlive:
    """One LeaseKeepAlive stream for one lease (`KVClient.lease_keep_alive`).

    The stream stays open between renewals, as clientv3's does; `close` drops it.
    """

    def __init__(self, stub: rpc_pb2_grpc.LeaseAsyncStub, lease_id: int) -> None:
        self.lease_id = lease_id
        self._call = stub.LeaseKeepAlive()

    async def renew(self) -> rpc_pb2.LeaseKeepAliveResponse:
        """Renew the lease once: the answer's ``TTL`` is the full granted TTL, or 0 if the lease
        is gone (expired or revoked: etcd answers that without an error).

        Raises:
            EtcdError: the stream failed (the member is down or cut off).
        """
        try:
            await self._call.write(rpc_pb2.LeaseKeepAliveRequest(ID=self.lease_id))
            response = await self._call.read()
        except grpc.aio.AioRpcError as error:
            raise EtcdError.of_failed_call(error) from error
        if not isinstance(response, rpc_pb2.LeaseKeepAliveResponse):  # EOF: ended, no status
            raise EtcdError(grpc.StatusCode.UNAVAILABLE, "kv: the keep-alive stream ended")
        return response

    def close(self) -> None:
        """Drop the stream (the lease lives on until its TTL runs out)."""
        self._call.cancel()
