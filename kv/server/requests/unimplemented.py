"""What kv answers for an etcd RPC it does not serve: UNIMPLEMENTED, saying why.

etcd 3.4's API has one service kv does not plan to serve: Auth. Unregistered, its RPCs would
get gRPC's own answer, UNIMPLEMENTED "Method not found!", which says nothing about why.
Registered *last* on the client server, the handler here answers every RPC of that service
with UNIMPLEMENTED and a message that says kv does not plan it, and why: a client learns what
kv lacks.

gRPC asks each generic handler in turn, in the order they were added, and the servicers of
the services kv does serve answer their own methods first; so this one sees only the RPCs
nothing else claimed. Methods of services not listed here (a typo, another API) still get
gRPC's "Method not found!". The answer is sent before any request is read, so one stream-stream
handler serves every kind of RPC: unary (``AuthEnable``), server streaming and bidirectional
alike. (Leases, watches, locks and elections were here, answering "arrives in chapter N",
until chapters 7, 8 and 9 served them.)

Introduced with chapter 1's server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc


@dataclass(frozen=True, slots=True)
class NotPlanned:
    """Why a service's RPCs are not served: kv does not plan them, for ``reason``."""

    reason: str

    def message(self, method: str) -> str:
        """The UNIMPLEMENTED details for ``method`` (``AuthEnable``)."""
        return f"kv: {method} is not planned ({self.reason})"

    async def refuse(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> NoReturn:
        """Answer ``method``'s call with UNIMPLEMENTED and `message`."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, self.message(method))


#: etcd 3.4's services that kv does not serve, by full gRPC service name.
NOT_SERVED: dict[str, NotPlanned] = {
    "etcdserverpb.Auth": NotPlanned("kv has no users, roles or authentication"),
}


class NotServedRefusal(grpc.GenericRpcHandler):
    """Answers the RPCs of `NOT_SERVED`'s services with UNIMPLEMENTED and the reason."""

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # "/etcdserverpb.Auth/AuthEnable" -> ("etcdserverpb.Auth", "AuthEnable")
        service, _, method = handler_call_details.method.removeprefix("/").partition("/")
        not_served = NOT_SERVED.get(service)
        if not_served is None or not method:
            return None  # not ours: gRPC answers "Method not found!"

        async def refuse(requests: AsyncIterator[bytes], context: Any) -> None:
            await not_served.refuse(method, context)

        return grpc.stream_stream_rpc_method_handler(refuse)


def add_not_served_refusal(server: grpc.aio.Server) -> None:
    """Register `NotServedRefusal` on ``server``; call it after every servicer is added."""
    server.add_generic_rpc_handlers((NotServedRefusal(),))
