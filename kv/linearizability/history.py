"""Histories: what each client asked, what it was told, and when (chapter 4).

A *history* is the raw material of a linearizability check: one `Operation` per request a
client made, with the time the client sent it (*call*), the time the answer came back
(*return*), the request (*input*) and the answer (*output*). The checker knows nothing about
networks or clocks; whoever records the history picks the times (a simulator's virtual ticks,
or ``time.monotonic()`` around a real gRPC call) and only their order matters.

An operation that never returned is *pending*: the client crashed, or gave up after a
timeout. Its request may or may not have taken effect, and the checker must allow both
(Herlihy & Wing 1990, §2: a history is "completed" by giving some pending operations a
response and dropping the others). Its return time is ``None`` (``math.inf`` means the same)
and its output is ``None``: unknown.

Two ways to build a history besides writing `Operation` values by hand:

* `history_from_events` -- a list of `Call` and `Return` events in real-time order, as
  Porcupine takes them; an event's position is its time unless it carries one.
* `Recorder` -- for a test that drives real clients: ``call()`` before sending a request,
  ``returned()`` when its answer arrives, ``history()`` at the end.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

#: A point in time: virtual ticks (int) or seconds (float); only the order matters.
Time: TypeAlias = int | float

In = TypeVar("In")
Out = TypeVar("Out")


# --8<-- [start:operation]
@dataclass(frozen=True, slots=True)
class Operation(Generic[In, Out]):
    """One request of one client: it took effect at some instant between call and return.

    ``return_time`` is ``None`` (or ``math.inf``) for an operation that never returned; its
    ``output`` is then ``None`` and the checker lets it take effect late, or not at all.
    """

    client_id: int
    call_time: Time
    return_time: Time | None
    input: In
    output: Out | None = None

    # --8<-- [end:operation]

    def __post_init__(self) -> None:
        if self.pending:
            if self.output is not None:
                raise ValueError(f"an operation that never returned has no output: {self}")
        elif self.return_time is not None and self.return_time < self.call_time:
            raise ValueError(f"an operation cannot return before it is called: {self}")

    @property
    def pending(self) -> bool:
        """True if the operation never returned (its effect, if any, is unknown)."""
        return self.return_time is None or self.return_time == math.inf

    @property
    def end(self) -> Time:
        """The return time, or ``math.inf`` for a pending operation."""
        return math.inf if self.return_time is None else self.return_time


@dataclass(frozen=True, slots=True)
class Call(Generic[In]):
    """A client sent request ``input``; ``op_id`` pairs this event with its `Return`."""

    op_id: int
    client_id: int
    input: In
    time: Time | None = None


@dataclass(frozen=True, slots=True)
class Return(Generic[Out]):
    """The answer ``output`` to the request of the `Call` with the same ``op_id`` arrived."""

    op_id: int
    output: Out
    time: Time | None = None


def history_from_events(
    events: Iterable[Call[In] | Return[Out]],
) -> list[Operation[In, Out]]:
    """Pair calls with returns into operations, in the order of their calls.

    Either every event carries a time, or none does and an event's position in ``events``
    is its time (so the list must be in real-time order). A call without a return is a
    pending operation.

    Raises:
        ValueError: an ``op_id`` is called twice, returns twice or returns without a call, or
            some events carry a time and others do not.
    """
    listed = list(events)
    timed = [event.time is not None for event in listed]
    if any(timed) and not all(timed):
        raise ValueError("either every event carries a time or none does")
    calls: dict[int, tuple[Call[In], Time]] = {}
    returns: dict[int, tuple[Out, Time]] = {}
    for position, event in enumerate(listed):
        time = position if event.time is None else event.time
        if isinstance(event, Call):
            if event.op_id in calls:
                raise ValueError(f"operation {event.op_id} is called twice")
            calls[event.op_id] = (event, time)
        else:
            if event.op_id not in calls:
                raise ValueError(f"operation {event.op_id} returns before it is called")
            if event.op_id in returns:
                raise ValueError(f"operation {event.op_id} returns twice")
            returns[event.op_id] = (event.output, time)
    history = []
    for op_id, (call, call_time) in calls.items():
        output, return_time = returns.get(op_id, (None, None))
        history.append(Operation(call.client_id, call_time, return_time, call.input, output))
    return history


class Recorder(Generic[In, Out]):
    """Collects a history while a test runs real clients; the caller reads the clock.

    Example::

        recorder: Recorder[Put | Get, PutResult | GetResult] = Recorder()
        op = recorder.call(client_id=1, input=Put("a", "1"), time=loop.time())
        response = await client.put("a", "1")
        recorder.returned(op, PutResult(response.header.revision), time=loop.time())
        result = check(KeyValueModel(), recorder.history())

    A request that fails with a timeout or a lost connection must *not* be marked returned:
    the server may still apply it, so it stays pending.
    """

    def __init__(self) -> None:
        self._calls: list[tuple[int, Time, In]] = []
        self._returns: dict[int, tuple[Time, Out]] = {}

    def call(self, client_id: int, input: In, time: Time) -> int:
        """Record that ``client_id`` sent ``input`` at ``time``; returns the operation's id."""
        self._calls.append((client_id, time, input))
        return len(self._calls) - 1

    def returned(self, op_id: int, output: Out, time: Time) -> None:
        """Record that operation ``op_id`` (from `call`) was answered with ``output``."""
        if not 0 <= op_id < len(self._calls):
            raise ValueError(f"no operation {op_id} was called")
        if op_id in self._returns:
            raise ValueError(f"operation {op_id} already returned")
        self._returns[op_id] = (time, output)

    def history(self) -> list[Operation[In, Out]]:
        """Every recorded operation, in call order; those never answered are pending."""
        history = []
        for op_id, (client_id, call_time, input) in enumerate(self._calls):
            return_time, output = self._returns.get(op_id, (None, None))
            history.append(Operation(client_id, call_time, return_time, input, output))
        return history
