"""The simulator's timeline as data: every pending task, with a stable id and a kind.

`kv.sim.Cluster` keeps everything that will happen -- a member's next tick, a
message's arrival, the end of a disk write, a client's request, a scheduled fault -- in one
`TaskQueue`, a heap ordered by (virtual time, id). The id is the order in which tasks were
scheduled, so it is as deterministic as the run: the same seed and the same actions give the
same ids. That makes a task something a person (or a trace) can name: the TUI's
choose-the-next-event mode (DSLabs' visual debugger does the same) lists `PendingTask`s and
delivers, drops, duplicates or delays one by its id (`kv.sim.Control`).

A task's ``run`` is a bound method or a ``functools.partial`` of one, never a closure, so
that ``copy.deepcopy`` of a cluster copies its future too (a closure would keep pointing at
the original's objects): `Cluster.copy` relies on it.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from kv.raft import Message
from kv.raft.events import name


class TaskKind(enum.Enum):
    """What a task is, for people choosing the next event."""

    TICK = "timer"  # a member's next tick (its election or heartbeat timer advances)
    MESSAGE = "message"  # a message arriving at a member
    DISK = "disk"  # a member's write to disk finishing (then it sends and applies)
    CLIENT = "client"  # a client's request or answer on its way
    OPERATOR = "operator"  # the membership operator's next step
    FAULT = "fault"  # a scheduled fault, or a test's function


@dataclass(order=True, slots=True)
class Task:
    time: int
    id: int
    run: Callable[[], None] = field(compare=False)
    kind: TaskKind = field(default=TaskKind.FAULT, compare=False)
    #: The member it concerns (the recipient of a message); 0 if none.
    node: int = field(default=0, compare=False)
    #: For a message: the message (so that in-flight messages can be listed).
    message: Message | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PendingTask:
    """A task on the timeline, as the outside sees it (no way to run it but by id)."""

    id: int
    time: int
    kind: TaskKind
    node: int
    message: Message | None

    def __str__(self) -> str:
        if self.message is not None:
            message = self.message
            return (
                f"#{self.id} at {self.time}ms: {message.type.name.lower()} "
                f"{name(message.from_)} -> {name(message.to)} (term {message.term})"
            )
        who = f" {name(self.node)}" if self.node else ""
        return f"#{self.id} at {self.time}ms: {self.kind.value}{who}"


class TaskQueue:
    """The tasks still to run, earliest first (ties: the one scheduled first)."""

    def __init__(self) -> None:
        self._heap: list[Task] = []
        self._last_id = 0
        self._last_run: Task | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def push(
        self,
        time: int,
        run: Callable[[], None],
        kind: TaskKind,
        node: int = 0,
        message: Message | None = None,
    ) -> int:
        """Schedule ``run`` at ``time``; returns the task's id."""
        self._last_id += 1
        heapq.heappush(self._heap, Task(time, self._last_id, run, kind, node, message))
        return self._last_id

    def pop(self) -> Task | None:
        """Take the next task off the timeline (None if there is none)."""
        if not self._heap:
            return None
        self._last_run = heapq.heappop(self._heap)
        return self._last_run

    @property
    def last_run(self) -> PendingTask | None:
        """The task `pop` took last (what the cluster's last step ran)."""
        task = self._last_run
        if task is None:
            return None
        return PendingTask(task.id, task.time, task.kind, task.node, task.message)

    def next_time(self) -> int | None:
        return self._heap[0].time if self._heap else None

    def find(self, task_id: int) -> Task:
        """The pending task with this id (left on the timeline).

        Raises:
            KeyError: no pending task has this id (it ran, or never existed).
        """
        for task in self._heap:
            if task.id == task_id:
                return task
        raise KeyError(f"no pending task #{task_id}")

    def take(self, task_id: int) -> Task:
        """Take the task with this id off the timeline, wherever it is.

        Raises:
            KeyError: no pending task has this id (it ran, or never existed).
        """
        task = self.find(task_id)
        self._heap.remove(task)
        heapq.heapify(self._heap)
        return task

    def put_back(self, task: Task) -> None:
        """Put a task taken with `take` back (perhaps at another time), keeping its id."""
        heapq.heappush(self._heap, task)

    def cancel(self, kind: TaskKind, node: int) -> None:
        """Remove every pending task of ``kind`` for ``node``."""
        self._heap = [t for t in self._heap if not (t.kind is kind and t.node == node)]
        heapq.heapify(self._heap)

    def pending(self) -> list[PendingTask]:
        """Every pending task, in the order they will run."""
        return [
            PendingTask(task.id, task.time, task.kind, task.node, task.message)
            for task in sorted(self._heap)
        ]
