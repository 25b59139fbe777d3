"""The poll model of attach mode: what each endpoint last answered, as rows a table can show.

Pure: no gRPC, no clock, no Textual. The poller (`tui.attach.poller`) feeds it answers and
failures with the time they happened; the widgets read its rows. That keeps the rules that
matter testable in microseconds:

* **Roles as words.** A member's role comes from its own ``Maintenance.Status``: ``isLearner``
  makes it a learner; ``leader == header.member_id`` a leader; any other non-zero leader a
  follower; ``leader == 0`` means it knows no leader (a candidate, or a follower that has not
  heard from one yet -- etcd's Status cannot tell them apart).
* **Down, then back.** A member that does not answer within the poll's timeout is DOWN. It
  keeps its last known name, id and numbers (dimmed by the table), and is asked again after
  an exponential backoff, capped (`Backoff`), as gRPC's own connection backoff does
  (grpc: doc/connection-backoff.md) -- but ours is short enough for a person watching.
* **History.** Each answer appends term, raft index and db size to a bounded history, which
  the trends pane draws as sparklines.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from kv.api.etcdserverpb import rpc_pb2

#: Samples of history kept per member: at one poll a second, two minutes.
HISTORY = 120


class Role(enum.Enum):
    """What a member is, as the table writes it: a word, so no colour is needed."""

    CONNECTING = "connecting"
    LEADER = "LEADER"
    FOLLOWER = "follower"
    LEARNER = "learner"
    NO_LEADER = "no leader"
    DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before asking a member that failed ``failures`` times in a row.

    ``initial * factor ** (failures - 1)``, at most ``cap`` seconds: 0.5, 1, 2, 4, 8, 8, ...
    No jitter: one TUI polling a handful of members cannot make a thundering herd, and a
    schedule without randomness is one a test can state exactly.
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 8.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return min(self.cap, self.initial * self.factor ** (failures - 1))


@dataclass(frozen=True, slots=True)
class Sample:
    """The numbers one Status answer gave."""

    member_id: int
    leader: int
    learner: bool
    term: int
    raft_index: int
    applied_index: int
    db_size: int
    db_size_in_use: int
    version: str
    errors: tuple[str, ...] = ()

    @classmethod
    def from_status(cls, status: rpc_pb2.StatusResponse) -> Sample:
        return cls(
            member_id=status.header.member_id,
            leader=status.leader,
            learner=status.isLearner,
            term=status.raftTerm,
            raft_index=status.raftIndex,
            applied_index=status.raftAppliedIndex,
            db_size=status.dbSize,
            db_size_in_use=status.dbSizeInUse,
            version=status.version,
            errors=tuple(status.errors),
        )

    @property
    def role(self) -> Role:
        if self.learner:
            return Role.LEARNER
        if self.leader == 0:
            return Role.NO_LEADER
        return Role.LEADER if self.leader == self.member_id else Role.FOLLOWER


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One line of the members table: an endpoint and what it last said."""

    endpoint: str
    name: str
    role: Role
    sample: Sample | None
    #: Seconds since its last answer (None: it never answered).
    seen_ago: float | None
    #: Why its last poll failed (None: it answered).
    error: str | None
    #: Seconds until it is asked again, while it is DOWN.
    retry_in: float | None
    terms: tuple[int, ...] = ()
    indexes: tuple[int, ...] = ()
    db_sizes: tuple[int, ...] = ()

    @property
    def member_id(self) -> int | None:
        return None if self.sample is None else self.sample.member_id

    @property
    def up(self) -> bool:
        return self.role not in (Role.DOWN, Role.CONNECTING)


@dataclass(slots=True)
class Tracker:
    """One endpoint's polling state: its last answer, its failures, when to ask next."""

    endpoint: str
    backoff: Backoff = field(default_factory=Backoff)
    name: str | None = None
    sample: Sample | None = None
    last_seen: float | None = None
    failures: int = 0
    error: str | None = None
    next_attempt: float = 0.0
    terms: deque[int] = field(default_factory=lambda: deque(maxlen=HISTORY))
    indexes: deque[int] = field(default_factory=lambda: deque(maxlen=HISTORY))
    db_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def due(self, now: float) -> bool:
        """Is it time to ask this endpoint (always, while it answers)?"""
        return now >= self.next_attempt

    def answered(self, sample: Sample, now: float) -> None:
        self.sample = sample
        self.last_seen = now
        self.failures = 0
        self.error = None
        self.next_attempt = now
        self.terms.append(sample.term)
        self.indexes.append(sample.raft_index)
        self.db_sizes.append(sample.db_size)

    def failed(self, error: str, now: float) -> None:
        self.failures += 1
        self.error = error
        self.next_attempt = now + self.backoff.delay(self.failures)

    def row(self, now: float) -> MemberRow:
        if self.error is not None:
            role = Role.DOWN
        elif self.sample is None:
            role = Role.CONNECTING
        else:
            role = self.sample.role
        return MemberRow(
            endpoint=self.endpoint,
            name=self.name or self.endpoint,
            role=role,
            sample=self.sample,
            seen_ago=None if self.last_seen is None else max(0.0, now - self.last_seen),
            error=self.error,
            retry_in=max(0.0, self.next_attempt - now) if self.error is not None else None,
            terms=tuple(self.terms),
            indexes=tuple(self.indexes),
            db_sizes=tuple(self.db_sizes),
        )


def normalise_endpoint(endpoint: str) -> str:
    """``http://127.0.0.1:2379`` and ``127.0.0.1:2379`` are one endpoint: ``host:port``
    (etcdctl accepts both; gRPC wants the second)."""
    for scheme in ("http://", "https://"):
        if endpoint.startswith(scheme):
            endpoint = endpoint[len(scheme) :]
    return endpoint.rstrip("/")


class Members:
    """Every endpoint's `Tracker`, in the order they were given or discovered."""

    def __init__(self, endpoints: list[str], backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self.trackers: dict[str, Tracker] = {}
        for endpoint in endpoints:
            self.add(endpoint)

    def add(self, endpoint: str) -> Tracker:
        endpoint = normalise_endpoint(endpoint)
        if endpoint not in self.trackers:
            self.trackers[endpoint] = Tracker(endpoint, self.backoff)
        return self.trackers[endpoint]

    def learn_members(self, members: rpc_pb2.MemberListResponse) -> list[str]:
        """Name every tracked member from a MemberList and track those not yet polled (its
        first client URL); return the endpoints added. A member not started yet (no name, no
        client URL: etcd lists it so after ``member add``) is left for a later list."""
        added = []
        by_url = {}
        for member in members.members:
            for url in member.clientURLs:
                by_url[normalise_endpoint(url)] = member
            if member.clientURLs and not any(
                normalise_endpoint(url) in self.trackers for url in member.clientURLs
            ):
                added.append(self.add(member.clientURLs[0]).endpoint)
        names = {member.ID: member.name for member in members.members if member.name}
        for tracker in self.trackers.values():
            listed = by_url.get(tracker.endpoint)
            if listed is not None and listed.name:
                tracker.name = listed.name
            elif tracker.sample is not None and tracker.sample.member_id in names:
                tracker.name = names[tracker.sample.member_id]
        return added

    def rows(self, now: float) -> list[MemberRow]:
        return [tracker.row(now) for tracker in self.trackers.values()]


def leader_of(rows: list[MemberRow]) -> MemberRow | None:
    """The member that answers and says it leads (None: no such member right now)."""
    return next((row for row in rows if row.role is Role.LEADER), None)


def changes(before: list[MemberRow], after: list[MemberRow]) -> list[str]:
    """What a person should be told about one poll: members going down or coming back, and
    leadership moving (the sentences of the events pane)."""
    old = {row.endpoint: row for row in before}
    told = []
    for row in after:
        previous = old.get(row.endpoint)
        was_down = previous is None or not previous.up
        if row.role is Role.DOWN and (previous is None or previous.role is not Role.DOWN):
            told.append(f"{row.name} is DOWN ({row.error}); retrying with backoff")
        elif row.up and was_down:
            assert row.sample is not None
            told.append(f"{row.name} answers: {row.role.value}, term {row.sample.term}")
    new_leader, old_leader = leader_of(after), leader_of(before)
    if new_leader is not None and (old_leader is None or old_leader.name != new_leader.name):
        assert new_leader.sample is not None
        told.append(f"{new_leader.name} leads, term {new_leader.sample.term}")
    return told


def human_bytes(size: int) -> str:
    """``24576`` -> ``24 KiB`` (etcdctl prints ``25 kB``; binary units match the page size)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: tuple[int, ...] | list[int], width: int) -> str:
    """The last ``width`` values as block characters, lowest ▁ to highest █ of that window
    (a flat series is a flat line)."""
    window = list(values)[-width:]
    if not window:
        return ""
    low, high = min(window), max(window)
    span = high - low
    top = len(SPARK_BLOCKS) - 1
    return "".join(
        SPARK_BLOCKS[0 if span == 0 else round((value - low) * top / span)] for value in window
    )
