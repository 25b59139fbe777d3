"""What a simulated member shows the tests and the TUI: role, term, log, store, lessor.

Read-only views of a `kv.sim.node.SimNode` (which inherits them), from its Raft core while it
runs and from its disk while it is down, plus chapter 7's handle on its state machine (its
lessor). Moved out of `kv.sim.node.node` (chapter 3).
"""

from __future__ import annotations

from typing import Protocol

from kv.lease import Lessor
from kv.mvcc import Store
from kv.raft import Entry, HardState, MemoryStorage, RawNode, Role, Status
from kv.server.applied.state_machine import StateMachine


class Member(Protocol):
    """What the views read in `kv.sim.node.SimNode`."""

    id: int
    raw: RawNode | None
    storage: MemoryStorage
    machine: StateMachine | None

    @property
    def persisted_log(self) -> list[Entry]: ...


class NodeView:
    """The inspection side of `kv.sim.node.SimNode` (module docstring)."""

    @property
    def role(self: Member) -> Role | None:
        """The node's role, or None while it is down."""
        return self.raw.role if self.raw is not None else None

    @property
    def term(self: Member) -> int:
        """The current term (the persisted one while down)."""
        return self.raw.term if self.raw is not None else self.storage.hard_state.term

    @property
    def lead(self: Member) -> int:
        """Whom the node believes leads (0: nobody; always 0 while down)."""
        return self.raw.lead if self.raw is not None else 0

    @property
    def commit(self: Member) -> int:
        """The commit index (the persisted one while down)."""
        if self.raw is not None:
            return self.raw.commit_index
        return self.storage.hard_state.commit

    @property
    def hard_state(self: Member) -> HardState:
        """The hard state in memory (the persisted one while down)."""
        return self.raw.hard_state() if self.raw is not None else self.storage.hard_state

    @property
    def log(self: Member) -> list[Entry]:
        """Every entry of the log, persisted or not (only the persisted ones while down)."""
        if self.raw is not None:
            return self.raw.all_entries()
        return self.persisted_log

    @property
    def persisted_log(self: Member) -> list[Entry]:
        """The entries on disk."""
        first, last = self.storage.first_index(), self.storage.last_index()
        return self.storage.entries(first, last + 1) if last >= first else []

    @property
    def last_index(self: Member) -> int:
        if self.raw is not None:
            return self.raw.last_index()
        return self.storage.last_index()

    @property
    def election_timer(self: Member) -> tuple[int, int] | None:
        """(ticks elapsed, ticks at which it fires) of the election timer (None while down).
        A leader's counts toward its CheckQuorum instead."""
        if self.raw is None:
            return None
        return self.raw.election_timer()

    @property
    def store(self: Member) -> Store | None:
        """The state machine's store (None while down)."""
        return self.machine.store if self.machine is not None else None

    def lessor(self: Member) -> Lessor:
        """This member's lessor (chapter 7): the leases it applied; deadlines while it leads."""
        machine = self.machine
        if machine is None:
            raise RuntimeError(f"n{self.id} is down")
        return machine.leases.lessor

    def get(self: Member, key: str) -> str | None:
        """The value of ``key`` in this member's store (a local read, for inspection; None
        if there is no such key or the member is down)."""
        if self.machine is None:
            return None
        kvs = self.machine.store.range(key.encode()).kvs
        return kvs[0].value.decode() if kvs else None

    def status(self: Member) -> Status | None:
        return self.raw.status() if self.raw is not None else None
