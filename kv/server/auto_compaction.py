"""Auto-compaction: the leader compacts the history nobody needs any more (chapter 10).

Every write adds a revision, and the MVCC store keeps every revision until it is compacted
(chapter 1). ``etcdctl compact REV`` does it by hand; an operator usually lets the cluster do
it, with two of etcd's flags (etcd: ``etcdserver/api/v3compactor``):

* ``--auto-compaction-mode periodic --auto-compaction-retention 1h`` keeps the last hour of
  history. The retention is a Go duration, or a bare integer meaning hours; ``0`` (the
  default) turns auto-compaction off. The compactor notes the current revision at every
  check, a tenth of the retention (of an hour at most) apart, keeps the notes that span one
  retention, and compacts to the oldest: the revision the store had one retention and one
  check ago (the newest note is a check old already). The first compaction comes a full
  retention after the start; then one every retention, or every hour if the retention is
  longer.
* ``--auto-compaction-mode revision --auto-compaction-retention 1000`` keeps the last 1000
  revisions: every 5 minutes it compacts to the current revision minus 1000, unless that is
  the revision it compacted last time.

Only the leader compacts (etcd pauses the compactor on followers and resumes it on the
leader): the compaction is an ordinary ``CompactionRequest`` proposed through the log, so every
member compacts at the same revision. A compaction that finds the revision compacted already
counts as done, as in etcd.

`PeriodicCompactor` and `RevisionCompactor` are pure: they are told the time, the revision and
whether this member leads, and answer the revision to compact, if any. `run` is the loop that
asks them and proposes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from kv.mvcc.errors import CompactedError
from kv.server.config import HOUR_NS, PERIODIC
from kv.server.errors import EtcdError, from_mvcc
from kv.server.flag_values import format_go_duration

log = logging.getLogger(__name__)

#: What a compaction at or below the compacted revision answers: done already, a success.
ALREADY_COMPACTED = from_mvcc(CompactedError())

#: A periodic compactor notes the revision this many times per compaction interval.
SAMPLES_PER_INTERVAL = 10
#: How often a revision compactor looks (etcd: ``revInterval``).
REVISION_CHECK_NS = 5 * 60 * 1_000_000_000


class Compactor(Protocol):
    """What `run` asks: how long to wait, and after each wait, what to compact. Its ``str``
    is the retention, for the log."""

    @property
    def check_ns(self) -> int:
        """How long to wait between two questions."""
        ...

    def due(self, now_ns: int, revision: int, leading: bool) -> int | None:
        """The revision to compact now, or None."""
        ...

    def compacted(self, revision: int, now_ns: int) -> None:
        """The compaction `due` asked for is done (or was done already)."""
        ...


# --8<-- [start:periodic]
@dataclass(slots=True)
class PeriodicCompactor:
    """Keep ``retention_ns`` of history: compact to the revision of one retention ago."""

    retention_ns: int
    started_ns: int
    revision_at_start: int
    _notes: deque[int] = field(init=False)
    _last_success_ns: int = field(init=False)
    _wait_ns: int = field(init=False)

    def __post_init__(self) -> None:
        # Notes taken every check_ns over one retention: the oldest is one retention old.
        self._notes = deque([self.revision_at_start], maxlen=self.retention_ns // self.check_ns + 1)
        self._last_success_ns = self.started_ns
        self._wait_ns = self.retention_ns  # the first compaction waits a whole retention

    @property
    def interval_ns(self) -> int:
        """Time between compactions after the first: the retention, an hour at most."""
        return min(self.retention_ns, HOUR_NS)

    @property
    def check_ns(self) -> int:
        return self.interval_ns // SAMPLES_PER_INTERVAL

    def due(self, now_ns: int, revision: int, leading: bool) -> int | None:
        # etcd notes the revision after its compaction returns, kv just before: a compaction
        # writes nothing, so the two differ only by writes made while it commits.
        target = None
        if leading and now_ns - self._last_success_ns >= self._wait_ns:
            self._wait_ns = self.interval_ns
            target = self._notes[0]
        # A follower keeps taking notes, so a new leader knows the revisions of the past.
        self._notes.append(revision)
        return target

    def compacted(self, revision: int, now_ns: int) -> None:
        self._last_success_ns = now_ns  # a failed compaction is retried at the next check

    def __str__(self) -> str:
        return format_go_duration(self.retention_ns)


# --8<-- [end:periodic]


@dataclass(slots=True)
class RevisionCompactor:
    """Keep the last ``retention`` revisions: compact to the current revision minus it."""

    retention: int
    _last: int = 0

    @property
    def check_ns(self) -> int:
        return REVISION_CHECK_NS

    def due(self, now_ns: int, revision: int, leading: bool) -> int | None:
        target = revision - self.retention
        if not leading or target <= 0 or target == self._last:
            return None
        return target

    def compacted(self, revision: int, now_ns: int) -> None:
        self._last = revision

    def __str__(self) -> str:
        return f"{self.retention} revisions"


def new_compactor(mode: str, retention: int, now_ns: int, revision: int) -> Compactor | None:
    """The compactor for the flags (`parse_retention`'s value), or None if retention is 0."""
    if retention == 0:
        return None
    if mode == PERIODIC:
        return PeriodicCompactor(retention, now_ns, revision)
    return RevisionCompactor(retention)


@dataclass(frozen=True, slots=True)
class Member:
    """What `run` needs of the member: its revision, whether it leads, and compaction."""

    revision: Callable[[], int]
    is_leader: Callable[[], bool]
    compact: Callable[[int], Awaitable[object]]


async def run(compactor: Compactor, member: Member) -> None:
    """Run for the member's life: ask ``compactor`` after every wait, and compact."""
    while True:
        await asyncio.sleep(compactor.check_ns / 1e9)
        target = compactor.due(time.monotonic_ns(), member.revision(), member.is_leader())
        if target is None:
            continue
        log.info("Starting auto-compaction at revision %d (retention: %s)", target, compactor)
        try:
            await member.compact(target)
        except EtcdError as error:
            if error != ALREADY_COMPACTED:
                log.warning("Failed auto-compaction at revision %d (%s)", target, error)
                continue
        compactor.compacted(target, time.monotonic_ns())
        log.info("Finished auto-compaction at revision %d", target)
