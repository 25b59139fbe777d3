"""The simulator is deterministic: a run is a pure function of (seed, scenario).

That is what makes a failing seed worth printing: ``Cluster.create(seed=...)`` with the same
scenario replays the failure event for event. These tests pin it down -- the same seed twice
gives the same event log, history and message counts, also in a fresh interpreter with a
different string-hash seed -- and check that `kv.sim` reads no clock and draws no randomness
but from seeded ``random.Random`` instances.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kv.sim import Cluster, CrashLeader, Heal, Partition, RestartAll, Scenario
from kv.sim.clients.workload import Workload, faults_for, run_workload

WORKLOAD = Workload(clients=3, duration_ms=2_000)


def fingerprint(seed: int) -> tuple[list[str], list[str], dict[str, int]]:
    """Everything observable about a faulty run: events, requests, message counts."""
    run = run_workload(seed, workload=WORKLOAD, faults=faults_for(seed, 3, 2_000))
    sent = {str(kind): count for kind, count in sorted(run.cluster.network.sent.items())}
    return run.cluster.event_lines(), [str(op) for op in run.ops], sent


def test_the_same_seed_gives_the_same_event_log_history_and_message_counts() -> None:
    first, second = fingerprint(11), fingerprint(11)
    assert first[0] == second[0], "seed=11: the event logs differ"
    assert first[1:] == second[1:], "seed=11: the histories or message counts differ"


def test_different_seeds_give_different_runs() -> None:
    assert fingerprint(11)[0] != fingerprint(12)[0]


def test_a_scheduled_scenario_replays_identically() -> None:
    scenario = Scenario.of(
        (1_500, Partition.of({1}, {2, 3})),
        (2_500, Heal()),
        (3_000, CrashLeader()),
        (4_500, RestartAll()),
    )

    def events() -> list[str]:
        cluster = Cluster.create(3, seed=4, scenario=scenario)
        client = cluster.client()

        def put(cluster: Cluster) -> None:
            client.put("k", "v")

        cluster.at(1_200, put)
        cluster.run_for(8_000)
        return cluster.event_lines()

    lines = events()
    assert lines == events()
    assert any("network: {1} | {2, 3}" in line for line in lines), lines
    assert any("crashed" in line for line in lines), lines


def test_the_event_log_does_not_depend_on_the_interpreters_hash_seed() -> None:
    """Set and dict orders of strings vary with PYTHONHASHSEED; a run must not."""
    program = (
        "import hashlib\n"
        "from kv.sim.clients.workload import Workload, faults_for, run_workload\n"
        "run = run_workload(3, workload=Workload(clients=3, duration_ms=1500),"
        " faults=faults_for(3, 3, 1500))\n"
        "print(hashlib.sha256('\\n'.join(run.cluster.event_lines()).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", program],
            capture_output=True,
            text=True,
            env=environment,
            check=True,
            cwd=Path(__file__).resolve().parents[3],
        )
        digests.add(done.stdout.strip())
    run = run_workload(
        3, workload=Workload(clients=3, duration_ms=1500), faults=faults_for(3, 3, 1500)
    )
    digests.add(hashlib.sha256("\n".join(run.cluster.event_lines()).encode()).hexdigest())
    assert len(digests) == 1, digests


# -- purity ---------------------------------------------------------------------------------

FORBIDDEN = frozenset({"asyncio", "grpc", "socket", "os", "time", "threading", "secrets"})


def sim_root() -> Path:
    spec = importlib.util.find_spec("kv.sim")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


#: The simulator's folder; its modules are checked in its layers' folders too.
SIM_ROOT = sim_root()


def sim_modules() -> list[Path]:
    return sorted(SIM_ROOT.rglob("*.py"))


@pytest.mark.parametrize(
    "module", sim_modules(), ids=lambda module: str(module.relative_to(SIM_ROOT))
)
def test_the_simulator_reads_no_clock_and_draws_only_from_seeded_randoms(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
    offending = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            offending += [alias.name for alias in node.names if alias.name in FORBIDDEN]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN:
                offending.append(node.module)
            if node.module == "random":
                offending.append("from random import ...")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
            and node.attr != "Random"
        ):
            offending.append(f"random.{node.attr} (the global random source)")
    assert not offending, f"{module.relative_to(SIM_ROOT)}: {offending}"
