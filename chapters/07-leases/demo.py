"""Chapter 7's demo: a lease across a leader change, on two members' state machines.

Two members apply the same log entries (a grant, two puts with the lease). The clock is a
number we move by hand. The leader keeps the lease's deadline; when it is deposed, the new
leader promotes its lessor and gives the lease its TTL again plus an election timeout, so the
lease outlives the old deadline. When the new deadline passes, the new leader hands the lease
out for revoke, and both members apply the revoke: both keys go, at one revision.

Run it: ``python chapters/07-leases/demo.py``.
"""

from __future__ import annotations

from kv.api.etcdserverpb import rpc_pb2
from kv.api.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from kv.lease import Lessor, min_ttl
from kv.mvcc import Store
from kv.server.applied.leases import AppliedLeases
from kv.server.applied.state_machine import StateMachine

LEASE = 0x694D
ELECTION = 1.0  # seconds: etcd's default election timeout, the new leader's extension


class Clock:
    """The demo's time, in seconds; only the demo moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def member(clock: Clock) -> StateMachine:
    lessor = Lessor(min_ttl(1000, 100))
    return StateMachine(Store(), leases=AppliedLeases(lessor, clock=clock))


def main() -> list[str]:
    """Play the story; return the lines it prints."""
    clock = Clock()
    n1, n2 = member(clock), member(clock)
    lines: list[str] = []
    n1.leases.lessor.promote(clock.now, ELECTION)  # n1 leads
    log = [
        InternalRaftRequest(lease_grant=rpc_pb2.LeaseGrantRequest(ID=LEASE, TTL=10)),
        InternalRaftRequest(put=rpc_pb2.PutRequest(key=b"svc/b", value=b"up", lease=LEASE)),
        InternalRaftRequest(put=rpc_pb2.PutRequest(key=b"svc/a", value=b"up", lease=LEASE)),
    ]
    for index, entry in enumerate(log, start=1):
        for machine in (n1, n2):
            machine.apply(index, entry)
    lease = n1.leases.lessor.lookup(LEASE)
    assert lease is not None
    lines.append(f"t=0: lease {LEASE:x} granted for {lease.ttl} s with keys {sorted(lease.keys)}")
    lines.append(f"t=0: n1 (leader) expires it at t={lease.expiry}; n2 keeps no deadline")
    clock.now = 6.0
    n1.leases.lessor.demote()
    clock.now = 7.5
    n2.leases.lessor.promote(clock.now, ELECTION)
    lease = n2.leases.lessor.lookup(LEASE)
    assert lease is not None
    lines.append(f"t=6: n1 is deposed; t=7.5: n2 leads and expires it at t={lease.expiry}")
    for moment in (10.0, 18.0, 18.5):
        clock.now = moment
        expired = n2.leases.lessor.expired(clock.now)
        lines.append(f"t={moment}: n2 finds expired: {[f'{found:x}' for found in expired]}")
    revoke = InternalRaftRequest(lease_revoke=rpc_pb2.LeaseRevokeRequest(ID=LEASE))
    for machine in (n1, n2):
        result = machine.apply(len(log) + 1, revoke)
        assert isinstance(result, rpc_pb2.LeaseRevokeResponse)
    for name, machine in (("n1", n1), ("n2", n2)):
        left = machine.store.range(b"svc/", b"svc0").kvs
        lines.append(
            f"{name}: revoke applied, revision {machine.store.current_revision}, keys left {left}"
        )
    return lines


if __name__ == "__main__":
    for line in main():
        print(line)
