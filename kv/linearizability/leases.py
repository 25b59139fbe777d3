"""The sequential specification of leases (chapter 7).

`LeaseModel` extends chapter 6's `kv.linearizability.txn.StoreModel` with etcd's leases:

* `LeaseGrant` ``(id, ttl)`` grants a lease with a client-chosen id; etcd refuses an id in use
  ("lease already exists"), answered here as ``LeaseGrantResult(granted=False)``. A grant
  writes no key and takes no revision.
* `LeasePut` ``(key, value, lease)`` is a put attached to a lease; etcd refuses it when the
  lease does not exist ("requested lease not found": ``LeasePutResult(attached=False)``).
  A plain `Put` detaches the key (etcd: a put without a lease sets lease 0).
* `LeaseRevoke` ``(id)`` deletes the lease and, atomically at one revision, every key attached
  to it (none, and no revision, if it has no keys). An unknown id answers
  ``LeaseRevokeResult(revoked=False)``.

Expiry is a revoke that the leader proposes when the TTL has run out (etcd: the primary
lessor's ``expiredLeaseC``, applied through Raft as a ``LeaseRevoke``). The model has no
clock, so it cannot decide when a lease *may* expire; instead whoever records the history
records the expiry as a `LeaseRevoke` operation of its own, from the proposal (its call)
to the apply (its return) -- or pending, if the proposal may be lost with a deposed leader.
A history where keys vanish with no revoke recorded is then rejected, which is the point.

Partitioning: a lease and the keys put with it form one object (a revoke deletes them
together), so `LeaseModel.nodes` adds the lease to the nodes of every lease operation and
`StoreModel.partition` joins them.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, TypeAlias

from kv.linearizability.model import Key, Value
from kv.linearizability.txn import StoreModel, StoreState, TxnInput, TxnOutput, TxnPut


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """Grant lease ``id`` for ``ttl`` seconds (etcd's ``LeaseGrant`` with an ``ID``)."""

    id: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LeaseGrantResult:
    """False: the id was in use ("lease already exists")."""

    granted: bool
    revision: int | None = None


@dataclass(frozen=True, slots=True)
class LeasePut:
    """A put of ``key`` attached to ``lease``."""

    key: Key
    value: Value
    lease: int


@dataclass(frozen=True, slots=True)
class LeasePutResult:
    """False: no such lease ("requested lease not found"); nothing was written."""

    attached: bool
    revision: int | None = None


@dataclass(frozen=True, slots=True)
class LeaseRevoke:
    """Revoke lease ``id`` (by a client, or by the leader when it expired)."""

    id: int


@dataclass(frozen=True, slots=True)
class LeaseRevokeResult:
    """False: no such lease ("requested lease not found")."""

    revoked: bool
    revision: int | None = None


#: What `LeaseModel` models: chapters 4, 6 and 7's operations.
LeaseInput: TypeAlias = TxnInput | LeaseGrant | LeasePut | LeaseRevoke
LeaseOutput: TypeAlias = TxnOutput | LeaseGrantResult | LeasePutResult | LeaseRevokeResult


def _lease_node(lease: int) -> tuple[str, int]:
    """A lease as a partition node (distinct from any key)."""
    return ("lease", lease)


@dataclass(frozen=True, slots=True)
class LeaseModel(StoreModel):
    """`StoreModel` with leases: grant, put with a lease, revoke (and expiry as a revoke)."""

    def step(self, state: StoreState, input: Any, output: Any) -> tuple[bool, StoreState]:
        match input:
            case LeaseGrant(lease):
                granted = lease not in state.leases
                after = state
                if granted:
                    after = StoreState(state.records, state.revision, state.leases | {lease})
                return self._fits(output, LeaseGrantResult, "granted", granted, after), after
            case LeasePut(key, value, lease):
                attached = lease in state.leases
                after = self.write(state, [TxnPut(key, value)], lease) if attached else state
                return self._fits(output, LeasePutResult, "attached", attached, after), after
            case LeaseRevoke(lease):
                revoked = lease in state.leases
                after = self._revoke(state, lease) if revoked else state
                return self._fits(output, LeaseRevokeResult, "revoked", revoked, after), after
        return StoreModel.step(self, state, input, output)

    def _revoke(self, state: StoreState, lease: int) -> StoreState:
        """The lease gone, and its keys deleted at one revision (etcd: ``lessor.Revoke``)."""
        attached = frozenset(pair for pair in state.records if pair[1].lease == lease)
        revision = state.revision + int(self.check_revisions and bool(attached))
        return StoreState(state.records - attached, revision, state.leases - {lease})

    def _fits(
        self, output: Any, kind: type[Any], field: str, expected: bool, after: StoreState
    ) -> bool:
        if output is None:
            return True
        if not isinstance(output, kind):
            raise TypeError(f"expected a {kind.__name__}, not {output!r}")
        return getattr(output, field) == expected and self._revision_ok(output, after)

    def is_read_only(self, input: Any, output: Any) -> bool:
        match output:
            case LeaseGrantResult(granted=False) | LeasePutResult(attached=False):
                return True
            case LeaseRevokeResult(revoked=False):
                return True
        return StoreModel.is_read_only(self, input, output)

    def nodes(self, input: Any) -> set[Hashable]:
        match input:
            case LeaseGrant(lease) | LeaseRevoke(lease):
                return {_lease_node(lease)}
            case LeasePut(key, _, lease):
                return {key, _lease_node(lease)}
        return StoreModel.nodes(self, input)

    def describe_operation(self, input: Any, output: Any) -> str:
        match input:
            case LeaseGrant(lease, ttl):
                call = f"lease-grant({lease}, ttl={ttl})"
            case LeasePut(key, value, lease):
                call = f"put({key!r}, {value!r}, lease={lease})"
            case LeaseRevoke(lease):
                call = f"lease-revoke({lease})"
            case _:
                return StoreModel.describe_operation(self, input, output)
        match output:
            case None:
                return f"{call} -> ? (never returned)"
            case LeaseGrantResult(ok) | LeasePutResult(ok) | LeaseRevokeResult(ok):
                revision = "" if output.revision is None else f" @{output.revision}"
                return f"{call} -> {'ok' if ok else 'refused'}{revision}"
        raise TypeError(f"{output!r} does not answer {input!r}")
