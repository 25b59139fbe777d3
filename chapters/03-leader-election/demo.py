"""Chapter 3 demo: elections on a simulated three-member cluster, on a virtual clock.

Run it with ``python3 chapters/03-leader-election/demo.py``. It drives `kv.sim` (Raft cores,
simulated disks and network, etcd's timings: 100 ms ticks, a 1 s election timeout) and prints
the event stream with virtual timestamps, in three acts:

1. a leader is elected; it crashes; a new one is elected; the old one restarts as a follower;
2. a follower is cut off for five seconds, with PreVote off (etcd 3.4's default) and then on;
3. the leader is cut off, with CheckQuorum off and then on (etcd always runs with it on).

Nothing reads a real clock and every random choice comes from ``SEED``: the output is the
same, line for line, at every run. Change ``SEED`` to see another, equally reproducible, story.
"""

from __future__ import annotations

from kv.sim import Cluster, SimConfig

SEED = 1


def status(cluster: Cluster) -> str:
    """One line: whom each member follows, or what it is doing, and its term."""
    parts = []
    for node_id in cluster.ids:
        node = cluster.nodes[node_id]
        if node.role is None:
            parts.append(f"n{node_id} down")
        elif node.lead == node_id:
            parts.append(f"n{node_id} leads (term {node.term})")
        elif node.lead:
            parts.append(f"n{node_id} follows n{node.lead} (term {node.term})")
        else:
            parts.append(f"n{node_id} is a {node.role}, no leader (term {node.term})")
    return ", ".join(parts)


class Story:
    """Prints a cluster's events as they accumulate, under a heading each time."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.shown = 0

    def tell(self, heading: str) -> None:
        print(f"-- {heading} (at {self.cluster.now}ms)")
        for event in self.cluster.events[self.shown :]:
            print(event)
        self.shown = len(self.cluster.events)
        print(f"     now:  {status(self.cluster)}")
        print()

    def skip(self) -> None:
        """Leave out what happened so far (a first election, like the one act 1 shows)."""
        self.shown = len(self.cluster.events)


def act_one() -> None:
    print("=== 1. elect, crash, elect again, restart ===")
    # --8<-- [start:act-one]
    cluster = Cluster.create(3, seed=SEED)  # PreVote and CheckQuorum on, etcd 3.5's defaults
    story = Story(cluster)
    old = cluster.elect_leader()  # run the clock until some member leads
    cluster.run_for(300)
    story.tell(f"n{old} leads")

    cluster.crash(old)  # it loses whatever it had not persisted
    new = cluster.elect_leader()
    cluster.run_for(300)
    story.tell(f"n{old} crashed, n{new} leads")

    cluster.restart(old)  # from what its disk holds: its term, its vote, its log
    cluster.run_for(1_000)
    story.tell(f"n{old} restarted")
    # --8<-- [end:act-one]


def cut_off_a_follower(pre_vote: bool) -> list[int]:
    """A follower is isolated for 5 s, then the network heals; returns the terms at the end."""
    # --8<-- [start:partition]
    cluster = Cluster.create(3, seed=SEED, config=SimConfig(pre_vote=pre_vote))
    story = Story(cluster)
    leader = cluster.elect_leader()
    cluster.run_for(500)
    story.skip()
    follower = max(node for node in cluster.ids if node != leader)
    print(f"n{leader} leads at term {cluster.nodes[leader].term}; n{follower} is cut off")
    cluster.isolate(follower)
    cluster.run_for(5_000)
    cluster.heal()
    cluster.run_for(3_000)
    story.tell(f"PreVote {'on' if pre_vote else 'off'}")
    # --8<-- [end:partition]
    return [cluster.nodes[node].term for node in cluster.ids]


def cut_off_the_leader(check_quorum: bool) -> None:
    """The leader is isolated: does it notice that it no longer leads anyone?"""
    cluster = Cluster.create(3, seed=SEED, config=SimConfig(check_quorum=check_quorum))
    story = Story(cluster)
    leader = cluster.elect_leader()
    cluster.run_for(500)
    story.skip()
    print(f"n{leader} leads at term {cluster.nodes[leader].term} and is cut off")
    cluster.isolate(leader)
    cluster.run_for(4_000)
    story.tell(f"CheckQuorum {'on' if check_quorum else 'off'}, still cut off")
    cluster.heal()
    cluster.run_for(1_000)
    story.tell("healed")


def main() -> None:
    act_one()

    print("=== 2. a follower cut off: term inflation ===")
    without = cut_off_a_follower(pre_vote=False)
    with_prevote = cut_off_a_follower(pre_vote=True)
    print(f"terms at the end: PreVote off {without}, PreVote on {with_prevote}")
    print()

    print("=== 3. the leader cut off: CheckQuorum ===")
    cut_off_the_leader(check_quorum=False)
    cut_off_the_leader(check_quorum=True)


if __name__ == "__main__":
    main()
