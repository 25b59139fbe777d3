"""`RawNode` is the core's whole public surface: drivers read its state through read-only
accessors, and no module outside ``kv.raft`` reaches into ``RawNode.raft``.

The accessors are checked on one node driven by hand through the Ready contract (persist to a
`MemoryStorage`, then `advance`); the seal by reading the syntax tree of every module of kv,
the benchmarks and the TUI.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

from kv.raft import (
    CompactedError,
    ConfChange,
    ConfChangeType,
    Config,
    ConfState,
    MemoryStorage,
    RawNode,
    Role,
    UnavailableError,
)
from tests.raftnet import handle_ready

ROOT = Path(__file__).resolve().parents[3]
#: Where the drivers live: everything that may use the core but is not the core, and the
#: chapters' demos (the chapters' tests of the core itself may look inside it).
DRIVER_TREES = ("kv", "benchmarks", "tui")
DEMOS = "chapters/*/demo.py"
SEED = 7
CONFIG = Config(id=1, election_tick=10, heartbeat_tick=1, pre_vote=False)


def single_node(voters: tuple[int, ...] = (1,)) -> tuple[RawNode, MemoryStorage]:
    storage = MemoryStorage()
    node = RawNode(CONFIG, storage, random.Random(SEED))
    node.bootstrap(list(voters))
    return node, storage


def test_a_bootstrapped_node_shows_its_first_entries_committed_not_yet_persisted() -> None:
    node, _ = single_node()
    assert (node.first_index(), node.last_index(), node.commit_index) == (1, 1, 1)
    assert node.applied_index == 0 and node.has_committed_to_apply()
    assert [entry.index for entry in node.unpersisted_entries()] == [1]
    assert (node.hard_state().term, node.hard_state().commit) == (1, 1)


def test_after_advance_nothing_is_left_unpersisted_or_to_apply() -> None:
    node, storage = single_node()
    handle_ready(node, storage)
    assert node.unpersisted_entries() == ()
    assert node.applied_index == 1 and not node.has_committed_to_apply()


def test_the_log_accessors_read_entries_and_their_terms() -> None:
    node, storage = single_node()
    handle_ready(node, storage)
    node.campaign()  # alone: its own vote (stepped once persisted) makes it leader
    handle_ready(node, storage)
    assert node.role is Role.LEADER and node.term == 2
    assert node.last_index() == 2
    assert (node.term_at(0), node.term_at(1), node.term_at(2)) == (0, 1, 2)
    assert [entry.index for entry in node.slice(1, 3)] == [1, 2]
    assert node.all_entries() == node.slice(1, 3)


def test_term_at_refuses_indexes_outside_the_log() -> None:
    node, storage = single_node()
    handle_ready(node, storage)
    with pytest.raises(UnavailableError):
        node.term_at(2)
    storage.create_snapshot(1, ConfState(voters=(1,)))
    storage.compact(1)
    restarted = RawNode(CONFIG, storage, random.Random(SEED))
    with pytest.raises(CompactedError):
        restarted.term_at(0)
    assert restarted.term_at(1) == 1  # the snapshot's own index still has its term


def test_conf_state_and_is_learner_follow_applied_configuration_changes() -> None:
    node, _ = single_node(voters=(2,))
    assert node.conf_state() == ConfState(voters=(2,)) and not node.is_learner
    node.apply_conf_change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, node_id=1))
    assert node.conf_state() == ConfState(voters=(2,), learners=(1,)) and node.is_learner


def test_the_election_timer_counts_ticks_toward_a_timeout_it_can_be_told_to_fire_at() -> None:
    node, storage = single_node(voters=(1, 2, 3))
    handle_ready(node, storage)
    elapsed, fires_at = node.election_timer()
    assert elapsed == 0 and CONFIG.election_tick <= fires_at < 2 * CONFIG.election_tick
    node.tick()
    node.tick()
    assert node.election_timer() == (2, fires_at)
    node.expire_election_in(3)
    assert node.election_timer() == (2, 5)


def test_the_status_agrees_with_the_accessors() -> None:
    node, storage = single_node()
    handle_ready(node, storage)
    status = node.status()
    assert (status.last_index, status.applied) == (node.last_index(), node.applied_index)
    assert (status.hard_state, status.conf_state) == (node.hard_state(), node.conf_state())


# -- the seal -----------------------------------------------------------------------------------


def reaches_into_the_core(tree: ast.AST) -> list[int]:
    """Lines of ``tree`` that read an attribute named ``raft`` (``raw.raft``), other than
    the package path ``kv.raft``."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "raft"
        and not (isinstance(node.value, ast.Name) and node.value.id == "kv")
    ]


def driver_modules() -> list[Path]:
    core = ROOT / "kv" / "raft"
    found = [path for tree in DRIVER_TREES for path in sorted((ROOT / tree).rglob("*.py"))]
    return [path for path in found if core not in path.parents] + sorted(ROOT.glob(DEMOS))


def test_no_module_outside_the_core_reaches_into_rawnode_raft() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in driver_modules()
        for line in reaches_into_the_core(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not offending, "read the core through RawNode's accessors: " + ", ".join(offending)


def test_the_seal_scan_sees_a_reach_into_the_core_and_lets_the_package_path_pass() -> None:
    tree = ast.parse("import kv.raft\nx = kv.raft.RawNode\ny = node.raw.raft.log\n")
    assert reaches_into_the_core(tree) == [3]
    assert any(path.name == "replica.py" for path in driver_modules())
