"""A tiny, deterministic, in-memory network of RawNodes for the Raft tests (chapter 3 on).

The tests' counterpart of etcd-io/raft's ``rafttest``: an ordinary module that the core tests
of chapters 3, 4 and 5 import (``from tests.raftnet import Network``). It lives in ``tests/``,
not in ``kv/``, because no member runs it (only tests and a benchmark do); it imports nothing
but `kv.raft`, which chapter 3 introduces, so every Raft chapter may use it
(``tests/test_chapter_imports.py`` checks what it imports, as if the chapter did).

Each member is a `RawNode` with a `MemoryStorage` and a toy state machine (the list of applied
commands). `Network.stabilize` runs every member's Ready loop -- persist, send, apply,
advance -- and delivers the messages in FIFO order, again and again, until nothing moves.
Delivery is synchronous and the order is fixed (members by id, messages first-in first-out),
and every node's randomness comes from ``random.Random(seed, id)``: a test is one exact run.

Faults are links that drop messages: `Network.isolate`, `Network.cut`, `Network.heal`, and a
`Network.drop_if` filter. `Network.crash` + `Network.restart` rebuild a node from what it
persisted (its storage), losing everything else, as a real crash would.

`handle_ready`, `drain` and `lone_leader` (above the network) and the functions at the bottom
help tests that drive one node by hand; ``benchmarks.proposals_cpu`` drives its lone leader
with them too, so that a test and the benchmark run one Ready loop.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kv.raft import (
    ConfChange,
    Config,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    Ready,
    Role,
    Snapshot,
    StepPeerNotFoundError,
)
from kv.raft.events import Event
from kv.raft.log import RaftLog


def encode_state(commands: list[bytes]) -> bytes:
    """The toy state machine's snapshot: its applied commands."""
    return json.dumps([command.hex() for command in commands]).encode()


def decode_state(data: bytes) -> list[bytes]:
    return [bytes.fromhex(item) for item in json.loads(data or b"[]")]


@dataclass
class Member:
    """One node of the network, with what it has persisted and applied."""

    node: RawNode
    storage: MemoryStorage
    config: Config
    #: The data of every applied non-empty normal entry, in order: the toy state machine.
    applied: list[bytes] = field(default_factory=list)
    #: Every applied entry (normal and conf change), for log-matching checks.
    applied_entries: list[Entry] = field(default_factory=list)
    #: Reads confirmed by ReadIndex: (request context, read index).
    reads: list[tuple[bytes, int]] = field(default_factory=list)


def persist(storage: MemoryStorage, ready: Ready) -> None:
    """Step 1 of the Ready loop: write the snapshot, entries and hard state."""
    if ready.snapshot is not None:
        storage.apply_snapshot(ready.snapshot)
    storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)


def handle_ready(node: RawNode, storage: MemoryStorage) -> Ready:
    """One turn of a node's Ready loop, driven by hand: persist, then advance (nothing is sent
    or applied). The Ready is returned for what it carried (``entries``,
    ``committed_entries``, ``messages``)."""
    ready = node.ready()
    persist(storage, ready)
    node.advance(ready)
    return ready


def drain(node: RawNode, storage: MemoryStorage) -> list[Message]:
    """Run one node's Ready loop until it has nothing more to do; return what it sent.

    For tests that drive a single node by hand: persisted, applied (nothing), advanced.
    """
    sent: list[Message] = []
    while node.has_ready():
        sent.extend(handle_ready(node, storage).messages)
    return sent


def lone_leader(seed: int = 0) -> tuple[RawNode, MemoryStorage]:
    """A node that bootstrapped a cluster of itself and leads it, its Readys all handled.

    PreVote and CheckQuorum are off (`new_node`): without CheckQuorum a leader heeds a vote
    request of a later term at once (it holds no lease).
    """
    storage = MemoryStorage()
    node, _ = new_node(1, storage=storage, seed=seed)
    node.bootstrap([1])
    drain(node, storage)
    node.campaign()  # alone: its own vote, once persisted, makes it leader
    drain(node, storage)  # the vote, then the empty entry of its term, committed
    assert node.role is Role.LEADER
    return node, storage


class Network:
    """Members 1..n (or the given ids), connected by a perfect network unless cut."""

    def __init__(
        self,
        ids: Iterable[int] = (1, 2, 3),
        *,
        learners: Iterable[int] = (),
        seed: int = 0,
        storages: dict[int, MemoryStorage] | None = None,
        bootstrap: bool = False,
        **config: Any,
    ) -> None:
        """``config`` holds `Config` fields for every member (pre_vote, check_quorum, ...).

        Unless given, PreVote and CheckQuorum are off here, so a test of plain Raft (Figure 2)
        sees plain Raft; the tests of those extensions switch them on.

        The voters are written into each storage's initial configuration, or, with
        ``bootstrap``, into the log as its first entries (`RawNode.bootstrap`, etcd's way).
        """
        self.seed = seed
        self.voters = sorted(ids)
        self.learner_ids = sorted(learners)
        self.config = {"pre_vote": False, "check_quorum": False, **config}
        self.members: dict[int, Member] = {}
        for member_id in [*self.voters, *self.learner_ids]:
            if bootstrap:
                self._start(member_id, MemoryStorage())
                self.members[member_id].node.bootstrap(self.voters)
                continue
            storage = (storages or {}).get(member_id) or MemoryStorage.with_members(
                self.voters, self.learner_ids
            )
            self._start(member_id, storage)
        self.queue: deque[Message] = deque()
        #: Every message that was delivered, in order.
        self.delivered: list[Message] = []
        #: Every event of every member, in order.
        self.events: list[Event] = []
        self._cut: set[tuple[int, int]] = set()
        self._down: set[int] = set()
        self.drop_if: Callable[[Message], bool] = lambda message: False
        self._collect_events()  # each member's "became follower at term 0"
        self.stabilize()  # persist (and apply) what bootstrapping wrote

    def _start(self, member_id: int, storage: MemoryStorage, applied: int = 0) -> None:
        config = Config(id=member_id, applied=applied, **self.config)
        rng = random.Random(f"{self.seed}/{member_id}")
        node = RawNode(config, storage, rng)
        self.members[member_id] = Member(node=node, storage=storage, config=config)

    def add_member(self, member_id: int, *, knows: Iterable[int] = ()) -> None:
        """Start a new member, as one joining an existing cluster does: it knows the members
        ``knows`` (empty: none; it learns the configuration from the leader's log or
        snapshot) and is not one of them itself until its own addition is applied."""
        self._start(member_id, MemoryStorage.with_members(list(knows)))
        self._collect_events()

    # -- access ------------------------------------------------------------------------

    def __getitem__(self, member_id: int) -> RawNode:
        return self.members[member_id].node

    def storage(self, member_id: int) -> MemoryStorage:
        return self.members[member_id].storage

    def applied(self, member_id: int) -> list[bytes]:
        return self.members[member_id].applied

    def ids(self) -> list[int]:
        return sorted(self.members)

    def leader(self) -> int | None:
        """The leader of the highest term among the running members, if any."""
        leaders = [
            (member.node.term, member_id)
            for member_id, member in self.members.items()
            if member_id not in self._down and member.node.role is Role.LEADER
        ]
        return max(leaders)[1] if leaders else None

    def is_down(self, member_id: int) -> bool:
        return member_id in self._down

    def roles(self) -> dict[int, Role]:
        return {member_id: member.node.role for member_id, member in self.members.items()}

    def terms(self) -> dict[int, int]:
        return {member_id: member.node.term for member_id, member in self.members.items()}

    def log(self, member_id: int) -> list[tuple[int, int]]:
        """(index, term) of every entry in a member's log."""
        entries = self.members[member_id].node.raft.log.all_entries()
        return [(entry.index, entry.term) for entry in entries]

    def event_lines(self) -> list[str]:
        return [str(event) for event in self.events]

    # -- faults ------------------------------------------------------------------------

    def cut(self, a: int, b: int) -> None:
        """Drop every message between ``a`` and ``b``, both ways."""
        self._cut |= {(a, b), (b, a)}

    def isolate(self, member_id: int) -> None:
        """Cut ``member_id`` off from everyone."""
        for other in self.members:
            if other != member_id:
                self.cut(member_id, other)

    def heal(self) -> None:
        self._cut.clear()
        self.drop_if = lambda message: False

    def crash(self, member_id: int) -> None:
        """Stop a member: it takes no more ticks or messages until `restart`."""
        self._down.add(member_id)

    def restart(self, member_id: int) -> None:
        """Rebuild a crashed member from its storage; its memory (and applied state) is lost."""
        self._down.discard(member_id)
        storage = self.members[member_id].storage
        self._start(member_id, storage)
        member = self.members[member_id]
        snapshot = storage.snapshot()
        if not snapshot.is_empty():
            # The state machine restarts from the snapshot; the log replays the rest.
            member.applied = decode_state(snapshot.data)
        self._collect_events()

    # -- running ------------------------------------------------------------------------

    def _collect_events(self) -> None:
        for member_id in self.ids():
            self.events.extend(self.members[member_id].node.take_events())

    def process_ready(self, member_id: int) -> list[Message]:
        """Run one member's Ready loop (persist, send, apply, advance) until it is idle."""
        member = self.members[member_id]
        node = member.node
        sent: list[Message] = []
        while node.has_ready():
            ready = node.ready()
            persist(member.storage, ready)
            sent.extend(ready.messages)
            if ready.snapshot is not None:
                member.applied = decode_state(ready.snapshot.data)
            for entry in ready.committed_entries:
                member.applied_entries.append(entry)
                if entry.type is EntryType.CONF_CHANGE:
                    node.apply_conf_change(ConfChange.unmarshal(entry.data))
                elif entry.data:
                    member.applied.append(entry.data)
            member.reads.extend((rs.request_ctx, rs.index) for rs in ready.read_states)
            node.advance(ready)
        self._collect_events()
        return sent

    def send(self, messages: Iterable[Message]) -> None:
        self.queue.extend(messages)

    def _deliverable(self, message: Message) -> bool:
        return (
            message.to in self.members
            and message.to not in self._down
            and message.from_ not in self._down
            and (message.from_, message.to) not in self._cut
            and not self.drop_if(message)
        )

    def deliver(self, message: Message) -> None:
        """Step one message into its recipient (if the network lets it through)."""
        if not self._deliverable(message):
            return
        self.delivered.append(message)
        with contextlib.suppress(ProposalDroppedError, StepPeerNotFoundError):
            self.members[message.to].node.step(message)
        self._collect_events()

    def stabilize(self, max_rounds: int = 10_000) -> None:
        """Process Readies and deliver messages until nothing is left to do."""
        for _ in range(max_rounds):
            for member_id in self.ids():
                if member_id not in self._down:
                    self.send(self.process_ready(member_id))
            if not self.queue:
                return
            while self.queue:
                self.deliver(self.queue.popleft())
        raise AssertionError(f"the network did not stabilize in {max_rounds} rounds")

    def tick(self, member_id: int, ticks: int = 1) -> None:
        """Give one member ticks (and let the network settle after each)."""
        for _ in range(ticks):
            self.members[member_id].node.tick()
            self._collect_events()
            self.stabilize()

    def tick_all(self, ticks: int = 1) -> None:
        """Give every running member ticks, in id order (settling after each round)."""
        for _ in range(ticks):
            for member_id in self.ids():
                if member_id not in self._down:
                    self.members[member_id].node.tick()
            self._collect_events()
            self.stabilize()

    def campaign(self, member_id: int) -> None:
        """Make a member start an election now, and let the network settle."""
        self.members[member_id].node.campaign()
        self._collect_events()
        self.stabilize()

    def elect(self, member_id: int) -> None:
        """Make ``member_id`` the leader (it must be able to win)."""
        self.campaign(member_id)
        assert self.leader() == member_id, f"n{member_id} did not win: {self.roles()}"

    def propose(self, member_id: int, data: bytes) -> None:
        self.members[member_id].node.propose(data)
        self._collect_events()
        self.stabilize()

    def compact(self, member_id: int) -> Snapshot:
        """Snapshot a member's state machine at its applied index and drop the log before."""
        member = self.members[member_id]
        status = member.node.status()
        snapshot = member.storage.create_snapshot(
            status.applied, status.conf_state, encode_state(member.applied)
        )
        member.storage.compact(status.applied)
        return snapshot


def message(kind: MessageType, frm: int, to: int, **fields: Any) -> Message:
    """A message, briefly: ``message(MessageType.VOTE, 2, 1, term=3)``."""
    return Message(type=kind, from_=frm, to=to, **fields)


def entries(*terms: int, start: int = 1) -> list[Entry]:
    """Entries with these terms at indexes start, start + 1, ..."""
    return [Entry(term=term, index=start + i) for i, term in enumerate(terms)]


def log_with(terms: list[int], unstable: Sequence[int] = ()) -> RaftLog:
    """A RaftLog whose storage holds entries of ``terms`` and whose unstable tail follows."""
    storage = MemoryStorage()
    storage.append(entries(*terms))
    log = RaftLog(storage)
    if unstable:
        log.append(entries(*unstable, start=len(terms) + 1))
    return log


def storage_with_log(voters: Iterable[int], terms: Iterable[int], term: int = 0) -> MemoryStorage:
    """Storage whose log holds entries of ``terms`` and whose hard state is at ``term``."""
    storage = MemoryStorage.with_members(list(voters))
    storage.append(entries(*terms))
    last_term = max([term, *terms])
    storage.set_hard_state(replace(storage.hard_state, term=last_term))
    return storage


def new_node(
    node_id: int,
    voters: Iterable[int] = (1, 2, 3),
    *,
    storage: MemoryStorage | None = None,
    seed: int = 0,
    **config: Any,
) -> tuple[RawNode, MemoryStorage]:
    """One node, driven by hand (PreVote and CheckQuorum off unless asked for)."""
    storage = storage if storage is not None else MemoryStorage.with_members(list(voters))
    settings = {"pre_vote": False, "check_quorum": False, **config}
    node = RawNode(Config(id=node_id, **settings), storage, random.Random(f"{seed}/{node_id}"))
    return node, storage


def of_type(messages: Iterable[Message], kind: MessageType) -> list[Message]:
    return [m for m in messages if m.type is kind]
