"""``kv serve``: one member answering etcd's gRPC API until a signal stops it (chapter 1).

`serve` wires the pieces together: the member's `kv.server.replica.replica.Replica` (its Raft
loop, opened by `kv.server.bootstrap`), the `Server` that answers requests, grpc.aio servers
with etcd's services (`CLIENT_GRPC_SERVERS` of them) behind one listener per
``--listen-client-urls`` entry, and another server with the peer service
(`kv.server.peers.peer_service`) on ``--listen-peer-urls``. It logs what
etcd logs at the same moments (etcd: ``embed/etcd.go``, ``embed/serve.go``,
``pkg/osutil/interrupt_unix.go``) so an operator who knows etcd's log knows kv's, then runs
until SIGINT or SIGTERM, until its task is cancelled, or until the member is removed from the
cluster, and stops gracefully.

Nothing here is global: two `serve` calls in one process are two independent members.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Iterator
from typing import Any

import grpc

from kv.api.etcdserverpb import rpc_pb2
from kv.api.peerpb import peer_pb2_grpc
from kv.client import KVClient
from kv.server import auto_compaction
from kv.server.bootstrap import open_replica
from kv.server.config import ServerConfig, parse_retention
from kv.server.flag_values import bind_address, dial_address, socket_address
from kv.server.front import Route, listen_privately, start_front
from kv.server.http.listener import start_http
from kv.server.http.routes import Routes
from kv.server.metrics.collector import HealthCounts, member_registry
from kv.server.metrics.grpc_metrics import Handlers, RpcCounter
from kv.server.peers.frames import MAGIC
from kv.server.peers.inbound import InboundStream
from kv.server.peers.peer_service import PeerService
from kv.server.peers.transport import PEER_GRPC_OPTIONS, REMOVED_TEXT, PeerTransport
from kv.server.replica import duties
from kv.server.replica.replica import Replica
from kv.server.requests.quota import MAX_QUOTA_BYTES
from kv.server.requests.server import Server
from kv.server.requests.services import add_services

log = logging.getLogger(__name__)

#: etcd lets gRPC receive a request this much larger than --max-request-bytes, so the server,
#: not the transport, gets to answer "etcdserver: request is too large" (etcd:
#: embed/config.go grpcOverheadBytes).
GRPC_OVERHEAD_BYTES = 512 * 1024
#: How many grpc.aio servers answer a member's clients behind its fronts. A grpc.aio server
#: takes one new call per turn of its accept loop, so under load the calls reach the member
#: one at a time; several servers, each dealt the front's connections in turn, take several
#: per turn, and more linearizable reads join each ReadIndex round (measured on a 3-member
#: cluster, 64 reads in flight: a third more reads per second, a quarter less CPU per read).
CLIENT_GRPC_SERVERS = 4
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
    _log_config(config)
    replica = await open_replica(config)
    server = Server(
        replica=replica,
        max_request_bytes=config.max_request_bytes,
        max_txn_ops=config.max_txn_ops,
        watch_progress_interval=config.experimental_watch_progress_notify_interval,
        quota_backend_bytes=config.quota_backend_bytes,
    )
    if config.quota_backend_bytes > MAX_QUOTA_BYTES:  # etcd: etcdserver/quota.go
        log.warning(
            "backend quota %d exceeds maximum recommended quota %d",
            config.quota_backend_bytes,
            MAX_QUOTA_BYTES,
        )
    # etcd prints ids with %x: lower-case hex, no padding, the form `etcdctl member list` shows.
    log.info("starting member %x in cluster %x", replica.member_id, replica.cluster_id)

    loop = asyncio.get_running_loop()
    stop_signal: asyncio.Future[str] = loop.create_future()  # why serve() stops
    rpcs = RpcCounter()  # chapter 10: grpc_server_handled_total and the rest
    client_servers = [
        grpc.aio.server(options=grpc_options(config.max_request_bytes))
        for _ in range(client_server_count(config))
    ]
    health = HealthCounts()
    registry = member_registry(server, rpcs, health)
    http_servers: list[asyncio.Server] = []  # --listen-metrics-urls
    client_http: list[asyncio.Server] = []  # HTTP on the client URLs (or their own)
    # Lock and Election run chapter 9's recipes through a client of this very member, as
    # etcd's do (`kv.server.requests.lock_election`); the member's own errors come first.
    own_client = KVClient(
        dial_address(config.listen_client_urls[0]),
        timeout=replica.timing.request_timeout + 1,
        options=[("grpc.use_local_subchannel_pool", 1)],
    )
    peer_server = grpc.aio.server(options=PEER_GRPC_OPTIONS)
    peer_listeners: list[asyncio.Server] = []  # --listen-peer-urls
    started = False
    watch_removal: asyncio.Task[None] | None = None
    with contextlib.ExitStack() as handlers:
        if handle_signals:  # before listening, so no signal can catch us half-started
            handlers.enter_context(_signal_handlers(loop, stop_signal))
        try:
            peer_pb2_grpc.add_PeerServicer_to_server(
                PeerService(replica.transport, leases=server.leases, disk=replica.disk),
                peer_server,
            )
            # Only the peer URLs' fronts reach it, through a private socket.
            peer_grpc = listen_privately(peer_server, "peer")
            await peer_server.start()
            for url in config.listen_peer_urls:
                peer_listeners.append(await _listen_peers(url, peer_grpc, replica.transport))
                log.info("listening for peers on %s", bind_address(url))
            # etcd serves its metrics URLs at once, before the member is ready: /health
            # says "false" until there is a leader.
            metrics = Routes(server, registry, health, client=False)
            for url in config.listen_metrics_urls:
                http_servers.append(await _listen_http(metrics, url))
                log.info("listening for metrics on %s", url)
            replica.start()
            _start_auto_compaction(config, replica, server)
            watch_removal = loop.create_task(_until_removed(replica, stop_signal))
            # etcd serves clients only once the member has published itself through the log
            # (ReadyNotify): by then a leader is known and writes can be taken. A signal (or
            # the member's removal) stops the wait: without a quorum it could be forever.
            # The client URLs are bound first, so that one that cannot be is found before the
            # member tells the cluster about it.
            services = Handlers()
            await add_services(services.as_server, server, own_client)
            for client_server in client_servers:  # each call counted once, where it is served
                rpcs.register(services, client_server)
            client_routes = Routes(server, registry, health, client=True)
            addresses = await _listen_clients(config, client_servers, client_routes, client_http)
            publish = duties.publish(replica, config.name, config.advertise_client_urls)
            waiting: list[asyncio.Future[Any]] = [publish, stop_signal]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if stop_signal.done():
                publish.cancel()
                log.info("%s", stop_signal.result())
                return
            for client_server in client_servers:
                await client_server.start()
            for listener in client_http:
                await listener.start_serving()
            started = True
            for address in addresses:
                log.warning(
                    "serving client traffic insecurely; this is strongly discouraged! address=%s",
                    address,
                )
            log.info("ready to serve client requests")
            if ready is not None:
                ready.set()
            # Without signal handlers only cancellation or removal ends serve().
            log.info("%s", await stop_signal)
        finally:
            if watch_removal is not None:
                watch_removal.cancel()
            # Also on cancellation and on a failed start: let calls in flight finish, briefly.
            for http_server in (*client_http, *http_servers):
                http_server.close()
            await asyncio.gather(*(each.stop(GRACE_SECONDS) for each in client_servers))
            await own_client.close()
            if started:
                await duties.hand_over_leadership(replica)  # needs the peers: before they go
            for listener in peer_listeners:
                listener.close()
            await peer_server.stop(0)
            await replica.stop()  # closes the peers' streams
            if started:
                log.info("stopped serving client requests")


def client_server_count(config: ServerConfig) -> int:
    """How many client gRPC servers a member runs: `CLIENT_GRPC_SERVERS` behind its fronts;
    one where gRPC has the client URLs to itself (``--listen-client-http-urls``), since only
    one server can bind a port."""
    return 1 if config.listen_client_http_urls else CLIENT_GRPC_SERVERS


def _start_auto_compaction(config: ServerConfig, replica: Replica, server: Server) -> None:
    """Run the auto-compactor the flags ask for, if any, for the member's life (chapter 10)."""
    retention = parse_retention(config.auto_compaction_mode, config.auto_compaction_retention)
    compactor = auto_compaction.new_compactor(
        config.auto_compaction_mode, retention, time.monotonic_ns(), server.store.current_revision
    )
    if compactor is None:
        return
    member = auto_compaction.Member(
        revision=lambda: server.store.current_revision,
        is_leader=lambda: replica.is_leader,
        compact=lambda revision: server.compact(rpc_pb2.CompactionRequest(revision=revision)),
    )
    replica.add_task(asyncio.get_running_loop().create_task(auto_compaction.run(compactor, member)))


async def _until_removed(replica: Replica, stop: asyncio.Future[str]) -> None:
    """Stop serving once this member has been removed from the cluster (etcd exits too)."""
    while not replica.removed:
        await asyncio.sleep(replica.timing.tick_seconds)
    if not stop.done():
        stop.set_result(f"{REMOVED_TEXT}, shutting down")


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


async def _listen_http(routes: Routes, url: str, *, start_serving: bool = True) -> asyncio.Server:
    """Serve ``routes`` over HTTP on ``url`` (from now, or from the server's
    ``start_serving``). Raises `ListenError` naming the URL."""
    return await _bound(url, start_http(routes, url, start_serving=start_serving))


async def _bound(url: str, listening: Awaitable[asyncio.Server]) -> asyncio.Server:
    """The server ``listening`` opens on ``url``; `ListenError`, naming the URL, if it cannot."""
    try:
        return await listening
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        address = bind_address(url)
        raise ListenError(f"cannot listen on {url}: listen tcp {address}: bind: {reason}") from None


async def _listen_peers(url: str, grpc_address: str, transport: PeerTransport) -> asyncio.Server:
    """Serve a peer URL (chapter 4): the peers' Raft streams, which open with
    `kv.server.peers.frames.MAGIC`, go to an `InboundStream` each; everything else (snapshots,
    the fault hooks, forwarded lease requests) to the peer gRPC service on ``grpc_address``.

    Raises:
        ListenError: the URL could not be bound.
    """
    stream = Route(MAGIC, lambda: InboundStream(transport))
    host, port = socket_address(url)
    front = start_front(host, port, grpc_addresses=[grpc_address], routes=[stream])
    return await _bound(url, front)


async def _listen_clients(
    config: ServerConfig,
    client_servers: list[grpc.aio.Server],
    routes: Routes,
    listeners: list[asyncio.Server],
) -> list[str]:
    """Bind the client URLs (chapters 1 and 10); return their addresses. The asyncio
    listeners, not serving yet, go into ``listeners``.

    As in etcd 3.4, gRPC and HTTP share each ``--listen-client-urls`` URL: gRPC listens on a
    private socket behind a front that tells the two apart (`kv.server.front`): each client
    server on its own, the front dealing the connections to them in turn. With etcd 3.5.8's
    ``--listen-client-http-urls``, gRPC (one server: `client_server_count`) has the client
    URLs to itself (no front, no copy) and client HTTP the URLs that flag names.

    Raises:
        ListenError: a URL could not be bound.
    """
    if config.listen_client_http_urls:
        for url in config.listen_client_http_urls:
            listeners.append(await _listen_http(routes, url, start_serving=False))
        (only,) = client_servers
        return [_listen(only, url) for url in config.listen_client_urls]
    # Only the fronts reach them, through private sockets.
    grpc_addresses = [listen_privately(each, "client") for each in client_servers]
    for url in config.listen_client_urls:
        host, port = socket_address(url)
        front = start_front(
            host, port, grpc_addresses=grpc_addresses, http=routes, start_serving=False
        )
        listeners.append(await _bound(url, front))
    return [bind_address(url) for url in config.listen_client_urls]


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
            stop_signal.set_result(f"received signal, shutting down ({signum.name})")

    installed: list[signal.Signals] = []
    try:
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
