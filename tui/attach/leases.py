"""The leases the LEASES tab shows, and their countdowns: the pure half (chapter 7's Lease API).

Each poll lists the lease IDs (``LeaseLeases``) and asks ``LeaseTimeToLive`` with the keys for
at most `LEASE_CAP` of them; `LeaseBook.update` takes those answers. Between two polls the
time left is counted down locally from the last answer (`Countdown`), so the screen moves
every frame without asking the cluster, and never goes below 0. A lease the cluster no longer
lists, or whose TimeToLive says -1 (etcd's answer for a lease that is gone), leaves the book.

The TTL etcd reports is whole seconds, rounded down (etcd ``lease/lessor.go``: ``Remaining``,
sent as ``int64(remaining.Seconds())``): an answer a little under the countdown is the same
deadline seen through that rounding, so it does not make the countdown jump (see `Countdown`).
Times are the caller's clock (``time.monotonic`` in the app, numbers in the tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kv.api.etcdserverpb import rpc_pb2
from tui.attach.browse import preview

#: At most this many leases are asked about and shown each poll; the rest are counted.
LEASE_CAP = 50
#: Attached keys named in the table; the rest are counted.
KEYS_SHOWN = 3


def lease_hex(lease_id: int) -> str:
    """A lease ID as etcdctl prints it: 16 hex digits (``%016x``)."""
    return f"{lease_id:016x}"


@dataclass(slots=True)
class Countdown:
    """The time left on a lease, from the last answer, counted down by the local clock."""

    #: Seconds left when `since` was read.
    left: float
    #: The clock when the answer was asked for (the server counted from then or later, so the
    #: countdown never shows more than the server would).
    since: float

    def remaining(self, now: float) -> float:
        """Seconds left at ``now``: never below 0."""
        return max(0.0, self.left - (now - self.since))

    def answer(self, ttl: int, now: float) -> None:
        """A new answer, ``ttl`` whole seconds at ``now``. If the countdown is within the
        rounding of that answer (``ttl <= remaining < ttl + 1``) it goes on unchanged;
        otherwise (a keepalive renewed the lease, or the clocks drifted) it restarts from it."""
        if not ttl <= self.remaining(now) < ttl + 1:
            self.left, self.since = float(ttl), now


@dataclass(slots=True)
class LeaseRow:
    """One lease as shown: its ID, granted TTL, countdown and attached keys."""

    lease_id: int
    granted_ttl: int
    countdown: Countdown
    keys: list[bytes] = field(default_factory=list)

    @property
    def hex_id(self) -> str:
        return lease_hex(self.lease_id)


@dataclass(slots=True)
class LeaseBook:
    """The leases last seen, by ID, and how many the cluster has beyond `LEASE_CAP`."""

    cap: int = LEASE_CAP
    rows: dict[int, LeaseRow] = field(default_factory=dict)
    #: Leases the cluster listed that were not asked about (over the cap).
    hidden: int = 0

    def to_ask(self, listed: Iterable[int]) -> list[int]:
        """The IDs to ask TimeToLive for: the lowest `cap` of those listed (a stable page);
        `hidden` counts the others."""
        ids = sorted(set(listed))
        self.hidden = max(0, len(ids) - self.cap)
        return ids[: self.cap]

    def update(
        self, answers: Iterable[rpc_pb2.LeaseTimeToLiveResponse], asked_at: float
    ) -> list[int]:
        """Take one poll's answers (asked for at ``asked_at``); the IDs that left the book
        (expired or revoked: not answered, or TTL -1)."""
        alive = {answer.ID: answer for answer in answers if answer.TTL >= 0}
        gone = [lease_id for lease_id in self.rows if lease_id not in alive]
        for lease_id in gone:
            del self.rows[lease_id]
        for lease_id, answer in alive.items():
            row = self.rows.get(lease_id)
            if row is None or row.granted_ttl != answer.grantedTTL:
                row = LeaseRow(lease_id, answer.grantedTTL, Countdown(answer.TTL, asked_at))
                self.rows[lease_id] = row
            else:
                row.countdown.answer(answer.TTL, asked_at)
            row.keys = list(answer.keys)
        return gone

    def forget(self, lease_id: int) -> None:
        """A lease revoked from here leaves at once (the next poll would agree)."""
        self.rows.pop(lease_id, None)

    def shown(self) -> list[LeaseRow]:
        """The rows in ID order (the order of etcdctl's ``lease list`` is the lessor's map's)."""
        return [self.rows[lease_id] for lease_id in sorted(self.rows)]


def keys_preview(keys: list[bytes], shown: int = KEYS_SHOWN) -> str:
    """``3: a, b, c`` or ``5: a, b, c +2``: how many keys, and the first few."""
    if not keys:
        return "0"
    names = ", ".join(preview(key, 20) for key in keys[:shown])
    more = f" +{len(keys) - shown}" if len(keys) > shown else ""
    return f"{len(keys)}: {names}{more}"
