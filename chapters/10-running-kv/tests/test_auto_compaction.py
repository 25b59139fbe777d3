"""Chapter 10: auto-compaction, as etcd's ``--auto-compaction-mode`` and ``-retention`` mean it.

The compactors are pure, so these tests drive them with a clock of their own: each
``drive`` call runs the compactor's checks over a stretch of time while a workload writes,
and records what it compacted and when (etcd: ``etcdserver/api/v3compactor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kv.server.auto_compaction import (
    REVISION_CHECK_NS,
    Compactor,
    PeriodicCompactor,
    RevisionCompactor,
    new_compactor,
)
from kv.server.config import ServerConfig, parse_retention
from kv.server.flag_values import ConfigError

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


@dataclass
class Run:
    """A compactor driven by a simulated clock; the store writes ``writes_per_second``."""

    compactor: Compactor
    writes_per_second: int = 1
    now: int = 0
    leading: bool = True
    failing: bool = False
    compactions: list[tuple[int, int]] = field(default_factory=list)  # (time, revision)

    @property
    def revision(self) -> int:
        return 1 + self.now * self.writes_per_second // SECOND

    def drive(self, until: int) -> None:
        while self.now + self.compactor.check_ns <= until:
            self.now += self.compactor.check_ns
            target = self.compactor.due(self.now, self.revision, self.leading)
            if target is not None and not self.failing:
                self.compactions.append((self.now, target))
                self.compactor.compacted(target, self.now)


def test_periodic_compaction_waits_one_retention_then_compacts_to_the_revision_of_then() -> None:
    run = Run(PeriodicCompactor(retention_ns=10 * MINUTE, started_ns=0, revision_at_start=1))
    run.drive(until=10 * MINUTE - 1)
    assert run.compactions == []
    run.drive(until=10 * MINUTE)
    assert run.compactions == [(10 * MINUTE, 1)]


def test_periodic_compaction_keeps_a_retention_and_a_check_of_history() -> None:
    # The oldest of the 11 notes, taken a check (a minute) apart, is 11 minutes old: etcd
    # keeps the retention and one check more.
    run = Run(PeriodicCompactor(retention_ns=10 * MINUTE, started_ns=0, revision_at_start=1))
    run.drive(until=40 * MINUTE)
    assert run.compactions == [
        (10 * MINUTE, 1),
        (20 * MINUTE, 1 + 9 * 60),  # the revision the store had 11 minutes before
        (30 * MINUTE, 1 + 19 * 60),
        (40 * MINUTE, 1 + 29 * 60),
    ]


def test_a_retention_longer_than_an_hour_compacts_every_hour_after_the_first() -> None:
    run = Run(PeriodicCompactor(retention_ns=3 * HOUR, started_ns=0, revision_at_start=1))
    run.drive(until=5 * HOUR)
    assert run.compactions == [
        (3 * HOUR, 1),
        (4 * HOUR, 1 + 54 * 60),  # 3 hours and one check (6 minutes) of history kept
        (5 * HOUR, 1 + 114 * 60),
    ]


def test_a_follower_never_compacts_but_a_new_leader_knows_the_revisions_of_the_past() -> None:
    run = Run(PeriodicCompactor(retention_ns=10 * MINUTE, started_ns=0, revision_at_start=1))
    run.leading = False
    run.drive(until=25 * MINUTE)
    assert run.compactions == []
    run.leading = True
    run.drive(until=25 * MINUTE + MINUTE)
    assert run.compactions == [(26 * MINUTE, 1 + 15 * 60)]  # the note of 11 minutes before


def test_a_failed_periodic_compaction_is_retried_at_the_next_check() -> None:
    run = Run(PeriodicCompactor(retention_ns=10 * MINUTE, started_ns=0, revision_at_start=1))
    run.failing = True
    run.drive(until=10 * MINUTE)
    run.failing = False
    run.drive(until=11 * MINUTE)
    assert run.compactions[0] == (11 * MINUTE, 1)  # a check later, not a whole interval


def test_revision_compaction_keeps_the_last_retention_revisions_every_five_minutes() -> None:
    run = Run(RevisionCompactor(retention=1000), writes_per_second=10)
    run.drive(until=15 * MINUTE)
    assert run.compactions == [
        (5 * MINUTE, 1 + 3000 - 1000),
        (10 * MINUTE, 1 + 6000 - 1000),
        (15 * MINUTE, 1 + 9000 - 1000),
    ]


def test_revision_compaction_waits_until_there_is_more_history_than_the_retention() -> None:
    run = Run(RevisionCompactor(retention=100_000), writes_per_second=100)
    run.drive(until=15 * MINUTE)  # 90,001 revisions: fewer than the retention
    assert run.compactions == []
    run.drive(until=20 * MINUTE)
    assert run.compactions == [(20 * MINUTE, 1 + 120_000 - 100_000)]


def test_revision_compaction_does_not_repeat_itself_when_nothing_was_written() -> None:
    run = Run(RevisionCompactor(retention=10), writes_per_second=0)
    compactor = run.compactor
    assert compactor.due(REVISION_CHECK_NS, 50, leading=True) == 40
    compactor.compacted(40, REVISION_CHECK_NS)
    assert compactor.due(2 * REVISION_CHECK_NS, 50, leading=True) is None


def test_revision_compaction_happens_on_the_leader_only() -> None:
    assert RevisionCompactor(retention=10).due(REVISION_CHECK_NS, 50, leading=False) is None


def test_a_retention_of_zero_turns_auto_compaction_off() -> None:
    assert new_compactor("periodic", 0, now_ns=0, revision=1) is None
    assert new_compactor("revision", 0, now_ns=0, revision=1) is None


@pytest.mark.parametrize(
    ("mode", "text", "value"),
    [
        ("periodic", "1", HOUR),  # a bare integer is hours in periodic mode
        ("periodic", "30m", 30 * MINUTE),
        ("periodic", "1h30m", 90 * MINUTE),
        ("revision", "1000", 1000),
        ("revision", "5m", 5 * MINUTE),  # etcd parses it as a duration in either mode
    ],
)
def test_the_retention_means_what_it_means_to_etcd(mode: str, text: str, value: int) -> None:
    assert parse_retention(mode, text) == value


@pytest.mark.parametrize(
    ("mode", "text", "message"),
    [
        ("daily", "1", 'unknown auto-compaction-mode "daily"'),
        ("periodic", "abc", 'error parsing CompactionRetention: time: invalid duration "abc"'),
        (
            "periodic",
            "-1",
            'error parsing CompactionRetention: time: missing unit in duration "-1"',
        ),
    ],
)
def test_a_bad_compaction_flag_is_refused_with_etcds_message(
    mode: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        ServerConfig(auto_compaction_mode=mode, auto_compaction_retention=text)
    assert str(refused.value) == message
