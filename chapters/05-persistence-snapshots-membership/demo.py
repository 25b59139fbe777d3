"""Chapter 5 demo: a member joins a running cluster by snapshot, is promoted, and the leader
leaves -- on a simulated three-member cluster, on a virtual clock.

Run it with ``python3 chapters/05-persistence-snapshots-membership/demo.py``. It drives
`kv.sim` (Raft cores, simulated disks and network, etcd's timings) with snapshots every 10
applied entries, and prints the events with virtual timestamps, in three acts:

1. 30 puts: every member snapshots its state machine and compacts its log behind it;
2. n4 is added as a learner: it starts with an empty log, the leader no longer has the
   entries it needs and sends its snapshot instead; once caught up, n4 is promoted to voter;
3. the leader is removed: it applies its own removal, steps down and shuts down, and the
   other three elect a new leader, which goes on taking writes.

Client requests and commit-index lines are left out of the printout. Nothing reads a real
clock and every random choice comes from ``SEED``: the output is the same at every run.
"""

from __future__ import annotations

from kv.raft import events as ev
from kv.sim import Cluster, MemberOp, OpState, SimConfig, TimedEvent

SEED = 2


def members(cluster: Cluster) -> str:
    """One line per member: role, term, log, snapshot, applied index, configuration."""
    lines = []
    for node_id, node in sorted(cluster.nodes.items()):
        status = node.status()
        if status is None:
            lines.append(f"     n{node_id}: down, its log on disk ends at {node.last_index}")
            continue
        voters = ",".join(f"n{v}" for v in status.conf_state.voters)
        learners = ",".join(f"n{v}" for v in status.conf_state.learners) or "-"
        log = node.log
        entries = f"{log[0].index}..{log[-1].index}" if log else "empty"
        lines.append(
            f"     n{node_id}: {node.role!s:<8} term {node.term}, log {entries}, "
            f"snapshot at {node.storage.snapshot().metadata.index}, applied {node.applied}, "
            f"voters {voters}, learners {learners}"
        )
    return "\n".join(lines)


def interesting(event: TimedEvent) -> bool:
    text = str(event.event)
    return not isinstance(event.event, ev.Committed) and "client c" not in text


class Story:
    """Prints a cluster's events as they accumulate, under a heading each time."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.shown = 0

    def tell(self, heading: str) -> None:
        print(f"-- {heading} (at {self.cluster.now}ms)")
        for event in self.cluster.events[self.shown :]:
            if interesting(event):
                print(event)
        self.shown = len(self.cluster.events)
        print(members(self.cluster))
        print()

    def skip(self) -> None:
        self.shown = len(self.cluster.events)


def put(cluster: Cluster, count: int, start: int = 0) -> None:
    client = cluster.client()
    for i in range(start, start + count):
        op = cluster.complete(client.put(f"k{i % 5}", f"v{i}"))
        assert op.state is OpState.OK, op


def finish(cluster: Cluster, op: MemberOp) -> None:
    assert cluster.run_until(lambda c: op.done, 10_000), op


def main() -> None:
    # --8<-- [start:setup]
    config = SimConfig(snapshot_every=10, snapshot_keep=2)  # etcd: --snapshot-count 100000
    cluster = Cluster.create(3, seed=SEED, config=config)
    story = Story(cluster)
    cluster.elect_leader()
    put(cluster, 30)
    cluster.run_for(300)
    story.skip()
    # --8<-- [end:setup]
    print("=== 1. 30 puts: each member snapshots and compacts its log ===")
    print(members(cluster))
    print()

    print("=== 2. n4 joins as a learner, catches up by snapshot, is promoted ===")
    # --8<-- [start:join]
    add = cluster.membership.add_learner()  # etcdctl member add n4 --learner
    promote = cluster.membership.promote()  # etcdctl member promote, once caught up
    finish(cluster, add)
    finish(cluster, promote)
    cluster.run_until(Cluster.converged, 2_000)
    # --8<-- [end:join]
    story.tell("n4 is a voter")

    print("=== 3. the leader is removed ===")
    # --8<-- [start:remove-leader]
    remove = cluster.membership.remove_leader()  # etcdctl member remove <the leader's id>
    finish(cluster, remove)
    new = cluster.elect_leader()
    cluster.run_until(lambda c: all(c.nodes[i].lead == new for i in c.ids), 2_000)
    put(cluster, 5, start=30)
    cluster.run_until(Cluster.converged, 2_000)
    # --8<-- [end:remove-leader]
    story.tell(f"n{remove.node} left, n{new} leads")
    values = {node_id: cluster.nodes[node_id].get("k4") for node_id in cluster.ids}
    print(f"k4 on every member: {values}")


if __name__ == "__main__":
    main()
