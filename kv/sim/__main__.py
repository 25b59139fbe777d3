"""Replay one simulated run by its seed: ``python -m kv.sim --seed 17 --faults``.

Prints the run's events (with ``--events``), its history, and the linearizability verdict,
exactly as the test with that seed saw them: the defaults are the workload of
``test_sim_workloads.py``; add ``--size 5`` for its five-member seeds, ``--plain-raft`` for
its plain-Raft seeds, and ``--snapshot-every 3 --snapshot-keep 1`` for its snapshot soak;
``--membership`` adds the seed's membership churn (chapter 5: members added as learners,
promoted, removed, the leader too).
"""

from __future__ import annotations

import argparse
import sys

from kv.sim.clients.workload import Workload, faults_for, run_workload
from kv.sim.config import UNRELIABLE, SimConfig
from kv.sim.faults.scenario import Scenario
from kv.sim.membership.steps import churn_for

DEFAULT = Workload()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kv.sim", description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument("--clients", type=int, default=DEFAULT.clients)
    parser.add_argument("--keys", type=int, default=DEFAULT.keys)
    parser.add_argument("--duration", type=int, default=DEFAULT.duration_ms, metavar="MS")
    parser.add_argument("--faults", action="store_true", help="the seed's random faults")
    parser.add_argument("--unreliable", action="store_true", help="lose/duplicate/reorder")
    parser.add_argument("--plain-raft", action="store_true", help="no PreVote, no CheckQuorum")
    parser.add_argument(
        "--membership", action="store_true", help="the seed's membership changes too"
    )
    parser.add_argument("--snapshot-every", type=int, default=0, metavar="ENTRIES")
    parser.add_argument("--snapshot-keep", type=int, default=SimConfig().snapshot_keep)
    parser.add_argument("--events", action="store_true", help="print every event")
    args = parser.parse_args(argv)

    workload = Workload(clients=args.clients, keys=args.keys, duration_ms=args.duration)
    config = SimConfig(
        network=UNRELIABLE if args.unreliable else SimConfig().network,
        snapshot_every=args.snapshot_every,
        snapshot_keep=args.snapshot_keep,
        pre_vote=not args.plain_raft,
        check_quorum=not args.plain_raft,
    )
    faults = faults_for(args.seed, args.size, args.duration) if args.faults else None
    if args.membership:
        churn = churn_for(args.seed, args.duration)
        faults = Scenario.of(*(faults or Scenario()).steps, *churn.steps)
    run = run_workload(args.seed, size=args.size, workload=workload, config=config, faults=faults)
    if args.events:
        print("\n".join(run.cluster.event_lines()))
    print("\n".join(str(op) for op in run.ops))
    print(run.describe())
    print(f"{len(run.ops)} requests: {run.summary()}")
    result = run.check()
    print(result)
    return 0 if result.linearizable else 1


if __name__ == "__main__":
    sys.exit(main())
