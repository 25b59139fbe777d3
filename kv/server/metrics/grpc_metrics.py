"""Counting the client RPCs a member serves, as go-grpc-prometheus counts etcd's (chapter 10).

etcd wraps its client gRPC server in go-grpc-prometheus' interceptors, which give the
``grpc_server_started_total``, ``grpc_server_handled_total`` (by status code),
``grpc_server_msg_received_total`` and ``grpc_server_msg_sent_total`` families, labelled by
``grpc_type`` (``unary``, ``client_stream``, ``server_stream``, ``bidi_stream``),
``grpc_service`` and ``grpc_method``. `RpcCounter` is the same thing for grpc.aio: it wraps
each method's handler once, as it is registered, and counts into plain integers, which the
member's collector reads when scraped.

As go-grpc-prometheus does, every method of etcd's services starts at zero for every code, so
a dashboard's ``rate()`` sees a series from the first scrape. The type label comes from the
method's declaration in the ``.proto``, not from the handler that answers it: an RPC kv
answers UNIMPLEMENTED (`kv.server.requests.unimplemented` serves those as streams) is
still labelled as etcd labels it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc
from grpc_health.v1 import health_pb2

from kv.api.etcdserverpb import rpc_pb2

#: Go's names of the status codes (``codes.Code.String()``), which the ``grpc_code`` label
#: holds: ``Canceled`` with one l, as Go spells it.
GO_CODE_NAMES = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

if TYPE_CHECKING:  # generic only in the stubs
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
#: The generated modules' descriptors are upb's; their stubs name two different classes.
ServiceDescriptor = Any
_CODE_NAMES = tuple(GO_CODE_NAMES.values())

#: The services whose methods start at zero: those etcd 3.4 registers with go-grpc-prometheus.
COUNTED_SERVICES: tuple[ServiceDescriptor, ...] = (
    *(
        rpc_pb2.DESCRIPTOR.services_by_name[name]
        for name in ("KV", "Watch", "Lease", "Cluster", "Maintenance", "Auth")
    ),
    health_pb2.DESCRIPTOR.services_by_name["Health"],
)


def rpc_type(client_streaming: bool, server_streaming: bool) -> str:
    """go-grpc-prometheus' ``grpc_type`` for a method with these streaming sides."""
    if client_streaming:
        return "bidi_stream" if server_streaming else "client_stream"
    return "server_stream" if server_streaming else "unary"


@dataclass(slots=True)
class MethodCounts:
    """The counts of one method: its labels, and what happened to its calls."""

    type: str
    service: str
    method: str
    started: int = 0
    received: int = 0
    sent: int = 0
    #: Calls ended, by Go's name of their status code (every code from zero).
    handled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_CODE_NAMES, 0))

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.type, self.service, self.method)


class Handlers:
    """Every client service's method handlers, gathered once to be registered on each of a
    member's client gRPC servers (`RpcCounter.register`).

    The generated ``add_*Servicer_to_server`` functions register on a server; they are handed
    `as_server` instead, which keeps what they register.
    """

    def __init__(self) -> None:
        self.registered: list[tuple[str, dict[str, Handler]]] = []
        self.generic: list[grpc.GenericRpcHandler] = []

    @property
    def as_server(self) -> grpc.aio.Server:
        """This, for the functions that register on a server: they call only the two methods
        below."""
        return cast(grpc.aio.Server, self)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self.registered.append((service, dict(handlers)))

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.generic.extend(handlers)


class RpcCounter:
    """Counts every call of the handlers it registers, by method and by the code it ended with.

    It wraps each method's handler once, where it is registered, rather than intercepting
    each call: a grpc.aio interceptor costs every call three coroutines of its own before the
    handler even runs. One counter serves any number of servers, and each call is counted
    once, by the server that takes it.
    """

    def __init__(self, services: Iterable[ServiceDescriptor] = COUNTED_SERVICES) -> None:
        self.methods: dict[str, MethodCounts] = {}
        for service in services:
            for method in service.methods:
                kind = rpc_type(method.client_streaming, method.server_streaming)
                path = f"/{service.full_name}/{method.name}"
                self.methods[path] = MethodCounts(kind, service.full_name, method.name)
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def register(self, handlers: Handlers, server: grpc.aio.Server) -> None:
        """Register ``handlers`` on ``server``, each counted."""
        for service, methods in handlers.registered:
            server.add_registered_method_handlers(
                service,
                {
                    name: self.counted(f"/{service}/{name}", handler)
                    for name, handler in methods.items()
                },
            )
        server.add_generic_rpc_handlers([_CountedGeneric(self, h) for h in handlers.generic])

    def counted(self, path: str, handler: Handler) -> Handler:
        """``handler``, serving the method ``path``, counting its calls."""
        known = self._wrapped.get(path)
        if known is not None and known[0] is handler:  # the same handler: the same wrapper
            return known[1]
        wrapped = self._wrap(self._counts(path, handler), handler)
        self._wrapped[path] = (handler, wrapped)
        return wrapped

    def _counts(self, path: str, handler: Handler) -> MethodCounts:
        counts = self.methods.get(path)
        if counts is None:  # a method of a service etcd does not count: as it is served
            service, _, method = path.removeprefix("/").partition("/")
            kind = rpc_type(handler.request_streaming, handler.response_streaming)
            counts = self.methods[path] = MethodCounts(kind, service, method)
        return counts

    def _wrap(self, counts: MethodCounts, handler: Handler) -> Handler:
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(counts, handler.unary_unary), **serializers
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(counts, handler.unary_stream, streamed_requests=False), **serializers
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _unary(counts, handler.stream_unary, streamed_requests=True), **serializers
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            _streaming(counts, handler.stream_stream, streamed_requests=True), **serializers
        )


class _CountedGeneric(grpc.GenericRpcHandler):
    """A generic handler (one that picks its handler by the call's method) whose handlers
    count their calls."""

    def __init__(self, counter: RpcCounter, handler: grpc.GenericRpcHandler) -> None:
        self.counter = counter
        self.handler = handler

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self.handler.service(handler_call_details)
        if handler is None:
            return None
        return self.counter.counted(handler_call_details.method, handler)


def _ended(counts: MethodCounts, context: Any, error: BaseException | None) -> None:
    """Count the end of a call with the code it ended with (an abort sets it on the context)."""
    code = context.code()
    if code is None:
        if error is None:
            code = grpc.StatusCode.OK
        elif isinstance(error, asyncio.CancelledError):
            code = grpc.StatusCode.CANCELLED
        else:
            code = grpc.StatusCode.UNKNOWN
    elif not isinstance(code, grpc.StatusCode):  # grpc.aio may hand back the raw value
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    counts.handled[GO_CODE_NAMES[code]] += 1


def _count_requests(counts: MethodCounts, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async def counted() -> AsyncIterator[Any]:
        async for request in requests:
            counts.received += 1
            yield request

    return counted()


def _unary(
    counts: MethodCounts, behavior: Callable[..., Any], *, streamed_requests: bool = False
) -> Callable[..., Any]:
    """A handler with one response: counted when it returns or raises."""

    async def counted(request: Any, context: Any) -> Any:
        counts.started += 1
        if streamed_requests:
            request = _count_requests(counts, request)
        else:
            counts.received += 1
        try:
            response = await behavior(request, context)
        except BaseException as error:
            _ended(counts, context, error)
            raise
        counts.sent += 1
        _ended(counts, context, None)
        return response

    return counted


def _streaming(
    counts: MethodCounts, behavior: Callable[..., Any], *, streamed_requests: bool
) -> Callable[..., Any]:
    """A handler with a stream of responses: each one yielded is counted as sent."""
    if not inspect.isasyncgenfunction(behavior):  # writes with context.write: count the call
        return _unary(counts, behavior, streamed_requests=streamed_requests)

    async def counted(request: Any, context: Any) -> AsyncIterator[Any]:
        counts.started += 1
        if streamed_requests:
            request = _count_requests(counts, request)
        else:
            counts.received += 1
        try:
            async for response in behavior(request, context):
                counts.sent += 1
                yield response
        except BaseException as error:
            _ended(counts, context, error)
            raise
        _ended(counts, context, None)

    return counted
