"""What is on the wire from one frame to the next: when each message left, and which ones
died on the way (the TUI).

The simulator keeps a message's arrival time (its task, `kv.sim.timeline.tasks`), not when it left,
and a lost message simply leaves the queue. `Traffic` watches the messages in flight frame
after frame, by task id, and so knows:

* when each one left: the first frame it was seen in (exact to a frame at the watch speed,
  `tui.speed`), so a message travels its whole line whatever its delay;
* which ones died, and where. The network's own count of losses (``Network.dropped``) says
  how many died since the last frame; they are found among the messages that left the queue:
  first those that reached their time while their link was cut or their receiver down (lost
  at the door, as `kv.sim.Cluster` drops them on delivery), then those that left before
  their time (dropped on the wire by hand, next-event mode's ``x``; one delivered early by
  hand is not counted as lost, so the count tells them apart). Losses at send time -- a cut
  or lossy link -- never enter the queue: they are only in the count, shown as a number.

A lost message stays on screen, struck out where it died, for `LOST_SHOWN_S` of wall time.
After a jump in time (a rewind, another session) `Traffic.reset` forgets what was seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kv.sim import Cluster
from kv.sim.timeline.tasks import PendingTask
from tui.session.narration import describe_message
from tui.view import WireItem

#: How long a lost message stays on screen, struck out (wall seconds).
LOST_SHOWN_S = 2.0


@dataclass(slots=True)
class _Flight:
    frm: int
    to: int
    label: str
    sent: int
    arrival: int

    def progress(self, now: int) -> float:
        span = max(1, self.arrival - self.sent)
        return min(1.0, max(0.0, (now - self.sent) / span))

    def item(self, now: int, *, lost: bool = False) -> WireItem:
        return WireItem(self.frm, self.to, self.label, self.progress(now), lost)


@dataclass(slots=True)
class Traffic:
    """The wire as the ON THE WIRE pane shows it (module docstring)."""

    _flights: dict[int, _Flight] = field(default_factory=dict)
    #: Lost messages still shown: (the wall time they go, how they are drawn).
    _lost: list[tuple[float, WireItem]] = field(default_factory=list)
    _dropped: int | None = None
    _now: int = 0

    def reset(self) -> None:
        """Forget what was seen (time jumped: a rewind, a seek, another session)."""
        self._flights.clear()
        self._lost.clear()
        self._dropped = None

    def update(self, cluster: Cluster, wall_s: float) -> None:
        """Look at the wire again (at wall time ``wall_s``)."""
        now = cluster.now
        if now < self._now:
            self.reset()
        messages = {t.id: t for t in cluster.control.pending() if t.message is not None}
        dropped = cluster.network.dropped.total()
        if self._dropped is not None:
            budget = dropped - self._dropped
            for gone in self._lost_ones(cluster, messages, budget):
                self._lost.append((wall_s + LOST_SHOWN_S, gone))
        self._lost = [(until, item) for until, item in self._lost if until > wall_s]
        fresh = self._dropped is None
        self._flights = {
            task_id: self._flights.get(task_id) or _new_flight(task, now, cluster, fresh)
            for task_id, task in messages.items()
        }
        self._dropped, self._now = dropped, now

    def _lost_ones(
        self, cluster: Cluster, messages: dict[int, PendingTask], budget: int
    ) -> list[WireItem]:
        now = cluster.now
        gone = [f for task_id, f in self._flights.items() if task_id not in messages]
        at_door = [f for f in gone if f.arrival <= now and _refused(cluster, f)]
        on_wire = [f for f in gone if f.arrival > now]
        lost = [f.item(f.arrival, lost=True) for f in at_door]
        lost += [f.item(now, lost=True) for f in on_wire]
        return lost[: max(0, budget)]

    def items(self, now: int, limit: int) -> tuple[WireItem, ...]:
        """The lost messages still shown, then those in flight, earliest arrival first."""
        flying = sorted(self._flights.items(), key=lambda kv: (kv[1].arrival, kv[0]))
        shown = [item for _, item in self._lost]
        shown += [flight.item(now) for _, flight in flying]
        return tuple(shown[:limit])

    @property
    def in_flight(self) -> int:
        return len(self._flights)


def _new_flight(task: PendingTask, now: int, cluster: Cluster, fresh: bool) -> _Flight:
    message = task.message
    assert message is not None
    # A message seen for the first time left since the last frame: now, near enough. In
    # the first frame after a jump in time nobody saw it leave: assume the slowest delay.
    sent = min(now, task.time - cluster.network.config.delay_ms[1]) if fresh else now
    return _Flight(message.from_, message.to, describe_message(message), sent, task.time)


def _refused(cluster: Cluster, flight: _Flight) -> bool:
    """Would its delivery have been refused (receiver gone or down, link cut)?"""
    node = cluster.nodes.get(flight.to)
    return node is None or not node.up or not cluster.network.connected(flight.frm, flight.to)
