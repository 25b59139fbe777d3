"""``kv serve``: one member answering etcd's gRPC API until a signal stops it (chapter 1).

`serve` wires the pieces together: the cluster that ``--initial-cluster`` describes, the
`Node` that holds this member's store, a grpc.aio server with etcd's services, and one listener
per ``--listen-client-urls`` entry. It logs what etcd logs at the same moments (etcd:
``embed/etcd.go``, ``embed/serve.go``, ``pkg/osutil/interrupt_unix.go``) so an operator who
knows etcd's log knows kv's, then runs until SIGINT or SIGTERM (or until its task is
cancelled) and stops gracefully.

Nothing here is global: two `serve` calls in one process are two independent members.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc

from kv.server.config import ServerConfig, bind_address
from kv.server.data_dir import open_member
from kv.server.durable_log import SnapshotPolicy
from kv.server.node import Node
from kv.server.quota import MAX_QUOTA_BYTES
from kv.server.services import add_services

log = logging.getLogger(__name__)

#: etcd lets gRPC receive a request this much larger than --max-request-bytes, so the server,
#: not the transport, gets to answer "etcdserver: request is too large" (etcd:
#: embed/config.go grpcOverheadBytes).
GRPC_OVERHEAD_BYTES = 512 * 1024
#: How long in-flight calls may run after a stop signal before they are cancelled.
GRACE_SECONDS = 1.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ListenError(OSError):
    """A ``--listen-client-urls`` address could not be bound; the message names the URL."""


def grpc_options(max_request_bytes: int) -> list[tuple[str, int]]:
    """The options of kv's gRPC server: etcd's message limits, no shared ports."""
    return [
        ("grpc.max_receive_message_length", max_request_bytes + GRPC_OVERHEAD_BYTES),
        ("grpc.max_send_message_length", 2**31 - 1),  # etcd: math.MaxInt32
        # gRPC sets SO_REUSEPORT by default, which lets a second server bind a port that is
        # already taken and silently share its traffic. etcd's Go listener refuses such a
        # port ("bind: address already in use"), and so must we.
        ("grpc.so_reuseport", 0),
    ]


# --8<-- [start:serve]
async def serve(
    config: ServerConfig,
    *,
    ready: asyncio.Event | None = None,
    handle_signals: bool = True,
) -> None:
    """Serve etcd's API for ``config``'s member until SIGINT/SIGTERM or cancellation.

    Args:
        config: the member's flags (already validated by `ServerConfig`).
        ready: set once every listener accepts requests.
        handle_signals: stop on SIGINT and SIGTERM. In-process tests pass False, so that
            Ctrl-C still interrupts the test run.

    Raises:
        ListenError: a listen URL could not be bound (e.g. its port is in use).
    """
    cluster = config.cluster()
    _log_config(config)
    recovered = open_member(
        Path(config.data_dir),
        member_id=cluster.member_named(config.name).id,
        cluster_id=cluster.id,
        policy=SnapshotPolicy(
            snapshot_count=config.snapshot_count,
            max_wals=config.max_wals,
            max_snapshots=config.max_snapshots,
        ),
    )
    node = Node(
        name=config.name,
        cluster=cluster,
        client_urls=config.advertise_client_urls,
        max_request_bytes=config.max_request_bytes,
        recovered=recovered,
        quota_backend_bytes=config.quota_backend_bytes,
    )
    if config.quota_backend_bytes > MAX_QUOTA_BYTES:  # etcd: etcdserver/quota.go
        log.warning(
            "backend quota %d exceeds maximum recommended quota %d",
            config.quota_backend_bytes,
            MAX_QUOTA_BYTES,
        )
    # etcd prints ids with %x: lower-case hex, no padding, the form `etcdctl member list` shows.
    log.info("starting member %x in cluster %x", recovered.member_id, recovered.cluster_id)
    if recovered.replayed:
        log.info("replayed %d write-ahead log entries", recovered.replayed)

    loop = asyncio.get_running_loop()
    stop_signal: asyncio.Future[str] = loop.create_future()  # the name of the signal
    server = grpc.aio.server(options=grpc_options(config.max_request_bytes))
    started = False
    with contextlib.ExitStack() as handlers:
        if handle_signals:  # before listening, so no signal can catch us half-started
            handlers.enter_context(_signal_handlers(loop, stop_signal))
        try:
            await add_services(server, node)
            addresses = [_listen(server, url) for url in config.listen_client_urls]
            await server.start()
            started = True
            for address in addresses:
                log.warning(
                    "serving client traffic insecurely; this is strongly discouraged! address=%s",
                    address,
                )
            log.info("ready to serve client requests")
            if ready is not None:
                ready.set()
            # Without signal handlers nothing resolves this: only cancellation ends serve().
            log.info("received signal, shutting down (%s)", await stop_signal)
        finally:
            # Also on cancellation and on a failed start: let calls in flight finish, briefly.
            await server.stop(GRACE_SECONDS)
            node.log.close()
            if started:
                log.info("stopped serving client requests")


# --8<-- [end:serve]


def _log_config(config: ServerConfig) -> None:
    """What etcd's embed package logs about a starting member."""
    log.info("name = %s", config.name)
    log.info("data dir = %s", config.data_dir)
    log.info("heartbeat = %dms", config.heartbeat_interval)
    log.info("election = %dms", config.election_timeout)
    log.info("advertise client URLs = %s", ",".join(config.advertise_client_urls))


def _listen(server: grpc.aio.Server, url: str) -> str:
    """Bind ``url`` on ``server``; return the address. Raises `ListenError` naming the URL."""
    address = bind_address(url)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0  # grpcio >= 1.50 raises; older versions returned 0
    if port == 0:
        raise ListenError(f"cannot listen on {url}: {_bind_failure(address)}")
    return address


def _bind_failure(address: str) -> str:
    """Why ``address`` cannot be bound, in etcd's words (``listen tcp ADDR: bind: ...``).

    gRPC only says "Failed to bind"; binding a plain socket to the same address asks the
    operating system for the reason (usually "address already in use").
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, int(port), type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(sockaddr)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        return f"listen tcp {address}: bind: {reason}"
    return f"listen tcp {address}: gRPC could not bind it"


@contextlib.contextmanager
def _signal_handlers(
    loop: asyncio.AbstractEventLoop, stop_signal: asyncio.Future[str]
) -> Iterator[None]:
    """Resolve ``stop_signal`` with the signal's name on SIGINT or SIGTERM, while inside."""

    def on_signal(signum: signal.Signals) -> None:
        if not stop_signal.done():
            stop_signal.set_result(signum.name)

    installed: list[signal.Signals] = []
    try:
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
