"""A simulated member's state as snapshots carry it, and its entries' requests (chapter 3).

The real server's snapshot is its backend file; the simulator's store lives in memory, so a
`kv.sim.node.SimNode` snapshots it as JSON (`encode_state`): the store's history, its
compacted revision, and its leases if it has any. `decode_state` builds the state machine
back from that, as a restarted etcd recovers from its backend, and `decode_request` reads a
log entry's ``InternalRaftRequest``. Moved out of `kv.sim.node.node`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.mvcc import HistoryEntry, KeyValue, Revision, Store
from kv.server.applied.leases import AppliedLeases, open_lessor
from kv.server.applied.state_machine import StateMachine


def decode_request(data: bytes) -> InternalRaftRequest:
    """An entry's data as the request it carries."""
    try:
        return InternalRaftRequest.FromString(data)
    except DecodeError as error:
        raise ValueError(f"entry data is not an InternalRaftRequest: {data!r}") from error


def encode_state(machine: StateMachine) -> bytes:
    """A snapshot of the state machine's store: its history, as JSON (the real server ships
    its SQLite backend instead; the simulator's store lives in memory)."""
    history = [
        [
            revision.main,
            revision.sub,
            entry.tombstone,
            entry.kv.key.hex(),
            entry.kv.value.hex(),
            entry.kv.create_revision,
            entry.kv.mod_revision,
            entry.kv.version,
            entry.kv.lease,
        ]
        for revision, entry in machine.store.history.items()
    ]
    state: dict[str, object] = {
        "history": history,
        "compact_revision": machine.store.compact_revision,
    }
    leases = [[lease.id, lease.ttl] for lease in machine.leases.lessor]
    if leases:  # (only then: a snapshot without leases stays byte for byte what it was)
        state["leases"] = leases
    return json.dumps(state, separators=(",", ":")).encode()


def decode_state(data: bytes, index: int, leases: AppliedLeases | None = None) -> StateMachine:
    """The state machine `encode_state` saved, as of log ``index``, its leases read back
    into ``leases`` (None: a new in-memory lessor with no clock)."""
    state = json.loads(data)
    history: dict[Revision, HistoryEntry] = {}
    for main, sub, tombstone, key, value, created, modified, version, lease in state["history"]:
        kv = KeyValue(bytes.fromhex(key), bytes.fromhex(value), created, modified, version, lease)
        history[Revision(main, sub)] = HistoryEntry(kv, tombstone)
    store = Store(history, compact_revision=state["compact_revision"])
    machine = StateMachine(store, applied_index=index, leases=leases)
    # The leases and their keys, as a restarted etcd recovers them from its backend.
    open_lessor(machine.leases.lessor, _SavedLeases(state.get("leases", [])), store)
    return machine


@dataclass(slots=True)
class _SavedLeases:
    """A snapshot's leases, as the `LeaseTable` `open_lessor` reads them from."""

    saved: list[list[int]]

    def leases(self) -> list[tuple[int, int]]:
        return [(lease_id, ttl) for lease_id, ttl in self.saved]

    def put_lease(self, lease_id: int, ttl: int) -> None:
        raise NotImplementedError("a snapshot's leases are read, never written")

    def delete_lease(self, lease_id: int) -> None:
        raise NotImplementedError("a snapshot's leases are read, never written")
