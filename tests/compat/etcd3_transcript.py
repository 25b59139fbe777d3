"""What the python ``etcd3`` client (PyPI etcd3 0.12.0) saw in one scenario, as plain JSON
(chapters 6-8), for `tests.compat.etcd3_driver`.

This runs in the driver's process, under the pure-Python protobuf (etcd3 0.12's generated
modules import under protobuf 7 only with it), so it imports nothing of kv: only the standard
library, etcd3, grpc and protobuf's JSON conversion.

Client ``i`` talks to the i-th endpoint (one member, or a follower and the leader of a cluster).
The transcript is printed as it is made, one JSON line per fact, so that a scenario that hangs
still shows how far it got: ``["lease", ID]`` for each lease ID the server chose, in the order the
scenario was granted them (the test masks them), and ``["entry", label, client, value]`` for each
result, as plain JSON: responses as ``MessageToDict`` with keys and values as text, errors as
their class, gRPC code and details. Two things are normalised here because only the client knows
them: a lock's random uuid1 value becomes ``<uuid-A>``, ``<uuid-B>`` (by lock), and a remaining
TTL read right after a grant or refresh becomes ``"granted-1..granted"`` (etcd truncates the
seconds left, so either is right, depending on how long the round trip took).
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import etcd3  # type: ignore[import-untyped]
import grpc
from etcd3 import exceptions  # type: ignore[import-untyped]
from etcd3.client import KVMetadata  # type: ignore[import-untyped]
from etcd3.events import Event  # type: ignore[import-untyped]
from etcd3.members import Member  # type: ignore[import-untyped]
from etcd3.watch import WatchResponse  # type: ignore[import-untyped]
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

Client = Any  # etcd3.Etcd3Client: the package has no type hints

#: How long a client waits for what the scenario knows will come (a lease's expiry at most).
PATIENCE = 20.0


class Transcript:
    """What one scenario saw, in order; the JSON this module prints."""

    def __init__(self, clients: list[Client]) -> None:
        self.clients = clients
        self.uuids: dict[bytes, str] = {}

    def lease(self, client: int, ttl: int, **kwargs: Any) -> Any:
        """Grant a lease through client ``client``; its (server-chosen) ID is remembered."""
        lease = self.clients[client].lease(ttl, **kwargs)
        if "lease_id" not in kwargs:
            _emit(["lease", lease.id])
        return lease

    def lock(self, client: int, name: str, ttl: int = 60) -> Any:
        lock = self.clients[client].lock(name, ttl=ttl)
        self.uuids[lock.uuid] = f"<uuid-{chr(ord('A') + len(self.uuids))}>"
        return lock

    def acquired(self, lock: Any) -> Any:
        """Call after ``lock.acquire()`` succeeded: remember the session lease it granted."""
        _emit(["lease", lock.lease.id])
        return lock

    def record(self, label: str, client: int, call: Callable[[Client], Any]) -> Any:
        """Run ``call`` on client ``client``; record what it returned or raised, as JSON."""
        try:
            result = call(self.clients[client])
        except (exceptions.Etcd3Exception, grpc.RpcError) as error:
            self.note(label, client, error)
            return None
        self.note(label, client, result)
        return result

    def note(self, label: str, client: int, value: Any) -> None:
        _emit(["entry", label, client, self.plain(value)])

    def error(self, error: BaseException) -> dict[str, Any]:
        """An exception as etcd3 raised it and, where it wraps a gRPC error, that error."""
        cause = error if isinstance(error, grpc.RpcError) else error.__context__
        name = "RpcError" if isinstance(error, grpc.RpcError) else type(error).__name__
        out: dict[str, Any] = {"error": name}
        if isinstance(error, exceptions.RevisionCompactedError):
            out["compacted_revision"] = error.compacted_revision
        if isinstance(cause, grpc.Call):
            out["code"] = cause.code().name
            out["details"] = cause.details()
        return out

    def text(self, raw: bytes) -> str:
        if raw in self.uuids:
            return self.uuids[raw]
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return "hex:" + raw.hex()

    def plain(self, value: Any) -> Any:
        """etcd3's results as JSON: messages, events, lease/kv metadata, members, tuples."""
        if isinstance(value, exceptions.Etcd3Exception | grpc.RpcError):
            return self.error(value)
        if isinstance(value, Message):
            return self._decoded(MessageToDict(value, preserving_proto_field_name=True))
        if isinstance(value, bytes):
            return self.text(value)
        if isinstance(value, list | tuple):
            return [self.plain(item) for item in value]
        if isinstance(value, Event):
            return {"class": type(value).__name__, **self.plain(value._event)}
        if isinstance(value, KVMetadata):
            return {
                "key": self.text(value.key),
                "create_revision": value.create_revision,
                "mod_revision": value.mod_revision,
                "version": value.version,
                "lease": value.lease_id,
                "header": self.plain(value.response_header),
            }
        if isinstance(value, Member):
            return {
                "ID": value.id,
                "name": value.name,
                "peer_urls": list(value.peer_urls),
                "client_urls": list(value.client_urls),
            }
        if isinstance(value, WatchResponse):
            return {"header": self.plain(value.header), "events": self.plain(value.events)}
        return value

    def _decoded(self, value: Any, key: str = "") -> Any:
        """MessageToDict's base64 ``key``/``value``/``range_end`` as text (uuids masked)."""
        if isinstance(value, list):
            return [self._decoded(item, key) for item in value]
        if isinstance(value, dict):
            return {k: self._decoded(v, k) for k, v in value.items()}
        if key in {"key", "value", "range_end", "keys"} and isinstance(value, str):
            return self.text(base64.b64decode(value))
        return value


def _emit(fact: list[Any]) -> None:
    print(json.dumps(fact), flush=True)


def ttl_band(remaining: int, granted: int) -> int | str:
    """A TTL read just after the grant or a refresh: either whole second is right."""
    return "granted-1..granted" if granted - 1 <= remaining <= granted else remaining


def client_for(endpoint: str) -> Client:
    host, port = endpoint.rsplit(":", 1)
    return etcd3.client(host=host, port=int(port), timeout=PATIENCE)


def watch_created(client: Client) -> threading.Event:
    """An event set once ``client`` has created its next watch (etcd3 returns from
    ``add_watch_callback`` once the server confirmed it): a scenario waits for it before the
    write that the watch must see, instead of sleeping."""
    created = threading.Event()
    original = client.add_watch_callback

    def add_watch_callback(*args: Any, **kwargs: Any) -> Any:
        watch_id = original(*args, **kwargs)
        created.set()
        return watch_id

    client.add_watch_callback = add_watch_callback
    return created


def in_thread(call: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``call`` in a thread; the returned function waits for and returns its result."""
    results: queue.Queue[Any] = queue.Queue()
    thread = threading.Thread(target=lambda: results.put(call()), daemon=True)
    thread.start()
    return lambda: results.get(timeout=PATIENCE)
