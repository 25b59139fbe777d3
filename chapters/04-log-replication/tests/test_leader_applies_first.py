"""A leader applies a Ready's committed entries before it persists the Ready only when all of
them were persisted by earlier Readys (`kv.server.replica.replica.applies_only_persisted`).
"""

from __future__ import annotations

from kv.raft import ConfState, Entry, Ready, Snapshot, SnapshotMetadata
from kv.server.replica.replica import applies_only_persisted

TERM = 2


def entries(first: int, last: int) -> tuple[Entry, ...]:
    return tuple(Entry(term=TERM, index=index) for index in range(first, last + 1))


def test_entries_committed_before_the_new_ones_were_persisted_already() -> None:
    assert applies_only_persisted(Ready(committed_entries=entries(5, 8), entries=entries(9, 12)))


def test_a_ready_with_nothing_new_to_write_applies_only_what_is_persisted() -> None:
    assert applies_only_persisted(Ready(committed_entries=entries(5, 8)))


def test_a_ready_with_nothing_to_apply_may_go_first() -> None:
    assert applies_only_persisted(Ready(entries=entries(9, 12)))


def test_an_entry_committed_in_the_ready_that_writes_it_is_not_persisted_yet() -> None:
    assert not applies_only_persisted(
        Ready(committed_entries=entries(5, 9), entries=entries(9, 12))
    )


def test_a_snapshot_to_install_is_not_persisted_yet() -> None:
    snapshot = Snapshot(metadata=SnapshotMetadata(conf_state=ConfState(voters=(1,)), index=4))
    assert not applies_only_persisted(Ready(snapshot=snapshot))
