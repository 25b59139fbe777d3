"""What the TUI's panels show, computed from a `kv.sim.Cluster` as plain values (the TUI).

Every widget of the embedded-simulator screen draws one of these frozen dataclasses, and the
app sets a widget's reactive attribute to a new one after each slice of simulation. Keeping
the reading of the cluster here, apart from drawing, does three things: the widgets stay
small, a value equal to the last one does not redraw (no flicker), and the rules of what is
shown -- which entry counts as divergent, how far a message got -- are testable without a
screen.

This module reads a node's state through `kv.sim.SimNode`'s inspection properties and
`kv.raft.RawNode.status`, and a node's log through its `kv.raft.log.RaftLog` (``first_index``
and ``slice``, so a long log is never copied whole).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kv.raft import Entry, Role
from kv.sim import Cluster, SimNode


class CellKind(enum.Enum):
    """How one log entry stands, drawn differently with or without colour."""

    COMMITTED = "committed"
    UNCOMMITTED = "uncommitted"  # drawn with a ░ before the term
    DIVERGENT = "divergent"  # differs from the leader's entry there: drawn with a !
    MISSING = "missing"  # the node's log ends before this index (others have it): drawn x
    COMPACTED = "compacted"  # behind the node's snapshot: ▒


#: A role as the word the screen shows (roles are words; colour only adds).
ROLE_WORDS: dict[Role | None, str] = {
    Role.LEADER: "LEADER",
    Role.FOLLOWER: "follower",
    Role.PRE_CANDIDATE: "pre-candidate",
    Role.CANDIDATE: "candidate",
    None: "DOWN",
}


@dataclass(frozen=True, slots=True)
class PeerProgress:
    """The leader's view of one member (Raft §5.3: nextIndex and matchIndex)."""

    next: int
    match: int
    #: The member's match is behind the leader's commit index.
    lagging: bool


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node as the NODES panel shows it."""

    id: int
    role: str  # a word of `ROLE_WORDS`, or "learner", or "removed"
    up: bool
    term: int
    vote: int
    commit: int
    applied: int
    last_index: int
    #: Which timer the bar shows ("election", "quorum") and how full it is (0..1).
    timer: str
    timer_fill: float
    #: The leader's view of this node (None on the leader itself or with no leader).
    progress: PeerProgress | None


@dataclass(frozen=True, slots=True)
class LogRow:
    """One node's row of the log matrix: a cell per index from ``start`` on."""

    node: int
    cells: tuple[tuple[int, CellKind], ...]  # (term, kind); term 0 for missing/compacted


@dataclass(frozen=True, slots=True)
class LogMatrix:
    start: int  # the index of each row's first cell
    rows: tuple[LogRow, ...]

    @property
    def end(self) -> int:
        """One past the highest index any row shows."""
        return self.start + max((len(row.cells) for row in self.rows), default=0)


@dataclass(frozen=True, slots=True)
class WireItem:
    """A message on the wire (or just arrived), for the ON THE WIRE pane."""

    frm: int
    to: int
    label: str  # `tui.session.narration.describe_message`: "append t3 [11..13] ..."
    #: How far it got, 0..1 (1: arrived); for a lost one, where it died.
    progress: float
    #: Lost on the way (`tui.traffic`): drawn struck out where it died.
    lost: bool = False


@dataclass(frozen=True, slots=True)
class KeyRow:
    key: str
    value: str
    mod_revision: int
    version: int


# -- nodes -------------------------------------------------------------------------------------


def role_word(cluster: Cluster, node: SimNode) -> str:
    """The node's role as a word: a learner or a removed member says so."""
    if cluster.membership.was_removed(node.id):
        return "removed"
    status = node.status()
    if status is None:
        return ROLE_WORDS[None]
    if node.id in status.conf_state.learners:
        return "learner"
    return ROLE_WORDS[node.role]


def timer_of(node: SimNode) -> tuple[str, float]:
    """The node's election timer (a follower's, a candidate's) or, on a leader, its
    check-quorum round, which the same counter measures (etcd): which one, and how far it
    has run (0..1)."""
    timer = node.election_timer
    if timer is None:
        return ("down", 0.0)
    elapsed, fires = timer
    if node.role is Role.LEADER:
        return ("quorum", min(1.0, elapsed / max(1, node.config.election_tick)))
    return ("election", min(1.0, elapsed / max(1, fires)))


def node_rows(cluster: Cluster) -> tuple[NodeRow, ...]:
    """Every node that ever ran, in id order."""
    leader = cluster.leader()
    progress = {}
    if leader is not None:
        status = cluster.nodes[leader].status()
        if status is not None:
            commit = status.hard_state.commit
            progress = {
                peer: PeerProgress(p.next, p.match, p.match < commit)
                for peer, p in status.progress.items()
                if peer != leader
            }
    rows = []
    for node_id in sorted(cluster.nodes):
        node = cluster.nodes[node_id]
        hard = node.hard_state
        timer, fill = timer_of(node)
        rows.append(
            NodeRow(
                id=node_id,
                role=role_word(cluster, node),
                up=node.up,
                term=node.term,
                vote=hard.vote,
                commit=node.commit,
                applied=node.applied,
                last_index=node.last_index,
                timer=timer,
                timer_fill=fill,
                progress=progress.get(node_id),
            )
        )
    return tuple(rows)


# -- logs --------------------------------------------------------------------------------------


def first_index(node: SimNode) -> int:
    """The first index the node still holds (1 unless it compacted behind a snapshot)."""
    if node.raw is not None:
        return node.raw.first_index()
    return node.storage.first_index()


def log_matrix(cluster: Cluster, start: int, width: int) -> LogMatrix:
    """The log matrix for indexes [start, start + width): every node's row.

    An entry is *divergent* where a leader exists and holds a different term at that index,
    *missing* where the node's log ends before an index some node holds, *compacted* below
    the node's first index (behind its snapshot).
    """
    end = start + width
    leader = cluster.leader()
    reference: dict[int, int] = {}
    if leader is not None:
        reference = {e.index: e.term for e in _entries(cluster.nodes[leader], start, end)}
    highest = max((node.last_index for node in cluster.nodes.values()), default=0)
    end = min(end, highest + 1)
    rows = []
    for node_id in sorted(cluster.nodes):
        node = cluster.nodes[node_id]
        terms = {e.index: e.term for e in _entries(node, start, end)}
        first, commit = first_index(node), node.commit
        cells: list[tuple[int, CellKind]] = []
        for index in range(start, end):
            term = terms.get(index)
            if index < first:
                cells.append((0, CellKind.COMPACTED))
            elif term is None:
                cells.append((0, CellKind.MISSING))
            elif index in reference and reference[index] != term:
                cells.append((term, CellKind.DIVERGENT))
            elif index <= commit:
                cells.append((term, CellKind.COMMITTED))
            else:
                cells.append((term, CellKind.UNCOMMITTED))
        rows.append(LogRow(node_id, tuple(cells)))
    return LogMatrix(start, tuple(rows))


def highest_index(cluster: Cluster) -> int:
    return max((node.last_index for node in cluster.nodes.values()), default=0)


def _entries(node: SimNode, lo: int, hi: int) -> list[Entry]:
    """The node's entries in [lo, hi) that it still holds."""
    if node.raw is not None:
        raw = node.raw
        lo = max(lo, raw.first_index())
        hi = min(hi, raw.last_index() + 1)
        return raw.slice(lo, hi) if lo < hi else []
    storage = node.storage
    lo = max(lo, storage.first_index())
    hi = min(hi, storage.last_index() + 1)
    return storage.entries(lo, hi) if lo < hi else []


# -- keys --------------------------------------------------------------------------------------


def key_rows(node: SimNode, limit: int = 200) -> tuple[KeyRow, ...]:
    """The node's applied key-value state (empty while it is down), in key order."""
    store = node.store
    if store is None:
        return ()
    result = store.range(b"\x00", b"\x00", limit=limit)
    return tuple(
        KeyRow(
            kv.key.decode(errors="replace"),
            kv.value.decode(errors="replace"),
            kv.mod_revision,
            kv.version,
        )
        for kv in result.kvs
    )
