"""Simulated watchers: watches on the members' hubs, resumed across crashes (chapter 8).

A `SimWatcher` is one client's watch on a simulated cluster. It opens a stream on a member's
watch hub (`kv.sim.node.SimNode.watches`), creates its watch there and records every reply.
`Watching` drives them all on the cluster's clock: every ``poll_ms`` it runs each hub's
catch-up (the real server's 100 ms timer) and takes what each stream holds.

A member that crashes or leaves takes its streams with it. The watcher then does what etcd's
client does: it watches again from its last revision + 1 (from the revision after the created
reply's, if it saw no event yet), on a member drawn from the seed -- the same one once it is
back, or another. Its replies keep going into the same `WatchSegment`: together they must
read as one watch that never broke (ordered, unique, reliable). A watch cancelled because
the history it needs was compacted starts over at the compaction revision, as etcd's client
does, in a new segment: the events before it are lost to it, and the checks see two watches.

Every choice comes from the random generator it is given, so a run stays a function of its
seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kv.watch import WatcherState, WatchRequest, WatchResponse, WatchStream

if TYPE_CHECKING:
    from kv.sim.timeline.cluster import Cluster

#: How often the hubs catch up and the watchers read their streams (etcd: 100 ms).
POLL_MS = 100


@dataclass(slots=True)
class WatchSegment:
    """One watch as its client saw it, across reconnections: what it first asked for, and
    every reply from every member it watched on, in order."""

    request: WatchRequest
    replies: list[WatchResponse] = field(default_factory=list)


@dataclass(slots=True)
class SimWatcher:
    """One client's watch (module docstring)."""

    request: WatchRequest
    segments: list[WatchSegment] = field(default_factory=list)
    #: The revision to watch from when it reconnects (0: from the next write).
    next_revision: int = 0
    #: The members it watched on, in order (for a failure's message).
    members: list[int] = field(default_factory=list)
    _stream: WatchStream | None = None
    _member: int = 0
    _watch_id: int = 0

    def __post_init__(self) -> None:
        self.next_revision = self.request.start_revision
        self.segments.append(WatchSegment(self.request))

    def connected(self, cluster: Cluster) -> bool:
        """Is its stream still open (its member up, in the same life, not removed)?"""
        stream = self._stream
        node = cluster.nodes.get(self._member)
        return stream is not None and node is not None and node.hub is stream.hub

    def connect(self, cluster: Cluster, member: int) -> None:
        """Watch on ``member`` from ``next_revision``."""
        self._stream = cluster.nodes[member].watches().open_stream()
        self._member = member
        self.members.append(member)
        request = replace(self.request, start_revision=self.next_revision)
        self._watch_id = self._stream.create(request)

    def read(self) -> None:
        """Take and record what its stream holds."""
        stream = self._stream
        assert stream is not None
        segment = self.segments[-1]
        for reply in stream.take():
            if reply.watch_id != self._watch_id:
                continue
            if reply.compact_revision:
                # Its history is gone: start over at the compaction revision, as a new watch,
                # as etcd's client does. Compaction keeps every change at that revision, a
                # delete's tombstone included (etcd #18089, fixed in etcd PR #18274).
                self.next_revision = reply.compact_revision
                request = replace(self.request, start_revision=self.next_revision)
                self.segments.append(WatchSegment(request))
                stream.close()
                self._stream = None
                return
            segment.replies.append(reply)
            if reply.created and not self.next_revision:
                self.next_revision = reply.revision + 1
            if reply.events:
                self.next_revision = reply.events[-1].revision + 1

    def synced_to(self, revision: int) -> bool:
        """Has it been sent everything up to ``revision``, from a member that has it?"""
        stream = self._stream
        if stream is None or stream.queued:
            return False
        watcher = stream.watchers.get(self._watch_id)
        return (
            watcher is not None
            and watcher.state is WatcherState.SYNCED
            and stream.hub.store.current_revision >= revision
        )

    def describe(self) -> str:
        members = " -> ".join(f"n{member}" for member in self.members)
        return f"watch {self.request} on {members}"


class Watching:
    """Every simulated watcher of a cluster, driven on its clock (module docstring)."""

    def __init__(self, cluster: Cluster, rng: random.Random, poll_ms: int = POLL_MS) -> None:
        self.cluster = cluster
        self.rng = rng
        self.poll_ms = poll_ms
        self.watchers: list[SimWatcher] = []
        cluster.at(cluster.now + poll_ms, self.poll)

    def watch(self, requests: Iterable[WatchRequest]) -> list[SimWatcher]:
        """Start a watcher for each request, each on a running member drawn from the seed."""
        started = [SimWatcher(request) for request in requests]
        self.watchers.extend(started)
        for watcher in started:
            self._reconnect(watcher)
        return started

    def poll(self, cluster: Cluster) -> None:
        """Catch the hubs up, read every stream, reconnect the watchers that lost theirs."""
        for node_id in cluster.up():
            hub = cluster.nodes[node_id].hub
            if hub is not None:
                hub.catch_up()
        for watcher in self.watchers:
            if watcher.connected(cluster):
                watcher.read()
            if not watcher.connected(cluster):
                self._reconnect(watcher)
        cluster.at(cluster.now + self.poll_ms, self.poll)

    def synced_to(self, revision: int) -> bool:
        """Has every watcher been sent everything up to ``revision``?"""
        return all(watcher.synced_to(revision) for watcher in self.watchers)

    def _reconnect(self, watcher: SimWatcher) -> None:
        up = [n for n in self.cluster.up() if not self.cluster.nodes[n].removed]
        if up:
            watcher.connect(self.cluster, self.rng.choice(up))
