"""Chapter 4 demo: replicating the log on a simulated three-member cluster, then checking it.

Run it with ``python3 chapters/04-log-replication/demo.py`` (``--seed N`` for another run).
It drives `kv.sim` (Raft cores, simulated disks and network, etcd's timings: 100 ms ticks, a
1 s election timeout) and prints what happens, with virtual timestamps, in four acts:

1. a leader is elected; a client writes through a follower, which forwards its puts to the
   leader, and another client reads through the other follower (ReadIndex), shown message
   by message;
2. a follower crashes; the two others go on committing; it restarts, and the leader finds
   where its log ends and sends it what it missed;
3. the leader crashes while a put is in flight; a new leader is elected, the clients carry
   on, and the old leader comes back as a follower whose log gets overwritten where it
   differs;
4. every request the clients made is checked with the linearizability checker.

Nothing reads a real clock and every random choice comes from the seed: the output is the
same, line for line, at every run with the same seed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kv.linearizability import CheckResult, KeyValueModel, check
from kv.raft import Message, MessageType
from kv.raft import events as ev
from kv.sim import ClientEvent, Cluster, NodeCrashed, NodeRestarted, TimedEvent

SEED = 4

M = MessageType


def member_line(cluster: Cluster, node_id: int) -> str:
    """One member: role and term, how far its log goes, what it committed and applied."""
    node = cluster.nodes[node_id]
    if not node.up:
        return f"n{node_id} down      log to {node.last_index}, commit {node.commit} (on disk)"
    return (
        f"n{node_id} {node.role!s:<9} term {node.term}, log to {node.last_index}, "
        f"commit {node.commit}, applied {node.applied}"
    )


def log_line(cluster: Cluster, node_id: int) -> str:
    """A member's log as index/term pairs (what is on disk, while it is down)."""
    return " ".join(f"{entry.index}/{entry.term}" for entry in cluster.nodes[node_id].log)


def progress_lines(cluster: Cluster) -> list[str]:
    """The leader's view of each follower (`kv.raft.progress.PeerStatus`, from its status)."""
    leader = cluster.leader()
    raw = cluster.nodes[leader].raw if leader is not None else None
    if raw is None:
        return []
    return [
        f"n{leader}'s progress for n{member}: {progress}"
        for member, progress in raw.status().progress.items()
        if member != leader
    ]


def describe(m: Message) -> str:
    """A message in one line, with the fields that matter for its type."""
    text = f"n{m.from_} -> n{m.to}  {m.type}"
    if m.type is M.APP:
        sent = ", ".join(f"{e.index}/{e.term}" for e in m.entries)
        text += f" prev={m.index}/{m.log_term} entries=[{sent}] commit={m.commit}"
    elif m.type is M.APP_RESP and m.reject:
        text += f" index={m.index} REJECT hint={m.reject_hint}/{m.log_term}"
    elif m.type in (M.APP_RESP, M.READ_INDEX_RESP):
        text += f" index={m.index}"
    elif m.type is M.HEARTBEAT:
        text += f" commit={m.commit}"
    if m.context:
        text += f" context={m.context.hex()}"
    if m.type is M.READ_INDEX:
        text += f" context={m.entries[0].data.hex()}"
    return text


def interesting(event: TimedEvent) -> bool:
    """What this demo prints of the event stream: new leaders, followers finding their
    leader, clients, crashes and restarts (votes and commits are left out: too many)."""
    inner = event.event
    if isinstance(inner, ClientEvent | NodeCrashed | NodeRestarted | ev.BecameLeader):
        return True
    return isinstance(inner, ev.BecameFollower) and inner.leader != 0


def not_heartbeats(m: Message) -> bool:
    """Every message but plain heartbeats (one each way per follower per tick)."""
    return m.type not in (M.HEARTBEAT, M.HEARTBEAT_RESP) or bool(m.context)


def involving(node_id: int) -> Callable[[Message], bool]:
    """The messages to or from one member."""
    return lambda m: node_id in (m.from_, m.to)


class Story:
    """Prints a cluster's events, and the messages it is asked to watch, in time order."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.shown = 0
        self.messages: list[tuple[int, str]] = []

    def watch(self, which: Callable[[Message], bool] | None) -> None:
        """Also print the messages ``which`` selects, when they are sent (None: stop)."""

        def record(m: Message) -> bool:
            if which is not None and which(m):
                self.messages.append((self.cluster.now, describe(m)))
            return False  # drop nothing: only look

        self.cluster.network.drop_if = record if which is not None else None

    def tell(self, heading: str, *, logs: bool = False, progress: bool = False) -> None:
        cluster = self.cluster
        print(f"-- {heading} (at {cluster.now}ms)")
        lines = [(e.time, str(e)) for e in cluster.events[self.shown :] if interesting(e)]
        lines += [(time, f"{time:>8}ms  {text}") for time, text in self.messages]
        for _, line in sorted(lines, key=lambda pair: pair[0]):
            print(line)
        self.shown = len(cluster.events)
        self.messages = []
        for node_id in cluster.ids:
            print(f"     {member_line(cluster, node_id)}")
            if logs:
                print(f"         log: {log_line(cluster, node_id)}")
        if progress:
            for line in progress_lines(cluster):
                print(f"     {line}")
        print()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the demo ended: its seed, the checker's verdict, the requests checked, and
    whether the members ended with the same log and store."""

    seed: int
    result: CheckResult
    requests: int
    converged: bool


def run(seed: int = SEED) -> Outcome:
    """The four acts (module docstring) on a three-member cluster built from ``seed``."""
    print("=== 1. a leader, puts through a follower, a read through the other ===")
    # --8<-- [start:act-one]
    cluster = Cluster.create(3, seed=seed)  # etcd's timings, PreVote and CheckQuorum on
    story = Story(cluster)
    leader = cluster.elect_leader()
    follower, other = (node for node in cluster.ids if node != leader)
    writer = cluster.client(follower)  # a client of one follower ...
    reader = cluster.client(other)  # ... and one of the other
    cluster.complete(writer.put("x", "1"))  # forwarded to the leader, answered when applied
    story.tell(f"n{leader} leads; a put through n{follower}")

    story.watch(not_heartbeats)
    cluster.complete(writer.put("x", "2"))
    story.tell("the next put, message by message")
    cluster.complete(reader.get("x"))  # ReadIndex: the leader confirms, the follower reads
    story.tell(f"a get through n{other}, message by message")
    story.watch(None)
    # --8<-- [end:act-one]

    print("=== 2. a follower crashes, and catches up ===")
    # --8<-- [start:act-two]
    cluster.crash(other)
    reader.endpoints = [follower]  # (the reader moves to a member that is up)
    for value in ("3", "4", "5"):
        cluster.complete(writer.put("x", value))  # two of three members: still a majority
    story.tell(f"n{other} crashed, three more puts", progress=True)

    story.watch(involving(other))
    cluster.restart(other)
    cluster.run_until(lambda c: c.converged(), 1_000)
    story.watch(None)
    cluster.run_for(10)  # the leader reads n{other}'s last answer
    story.tell(f"n{other} restarted and caught up", progress=True)
    # --8<-- [end:act-two]

    print("=== 3. the leader crashes with a put in flight ===")
    # --8<-- [start:act-three]
    before = cluster.nodes[leader].last_index
    in_flight = writer.put("y", "1")
    cluster.run_until(lambda c: c.nodes[leader].last_index > before, 100)  # in its log ...
    cluster.crash(leader)  # ... and the leader crashes before it sends it to anyone
    new_leader = cluster.elect_leader()
    cluster.complete(in_flight)
    cluster.complete(reader.get("y"))
    cluster.complete(writer.put("x", "6"))
    story.tell(f"n{leader} crashed, n{new_leader} leads", logs=True)

    story.watch(involving(leader))
    cluster.restart(leader)
    cluster.run_until(lambda c: c.converged(), 5_000)
    story.tell(f"n{leader} restarted", logs=True)
    story.watch(None)
    # --8<-- [end:act-three]

    print("=== 4. was every answer linearizable? ===")
    # --8<-- [start:act-four]
    for op in cluster.ops:
        print(f"     {op}")
    result = check(KeyValueModel(check_revisions=True), cluster.history)
    # --8<-- [end:act-four]
    return Outcome(seed, result, len(cluster.ops), cluster.converged())


def main(argv: Sequence[str] | None = None) -> Outcome:
    parser = argparse.ArgumentParser(description="Chapter 4's demo: replicating the log.")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    outcome = run(args.seed)
    print(f"{outcome.requests} requests: {outcome.result} (seed {outcome.seed})")
    return outcome


if __name__ == "__main__":
    main()
