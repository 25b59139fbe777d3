"""How fast the simulation runs against the wall clock, and how the app advances it (the TUI).

A speed is virtual milliseconds per wall millisecond: x1 is real time (an election timeout
takes a second, as in etcd), x0.01 slows a 5 ms message to half a second so the eye can
follow it on the wire, "max" runs as fast as the machine allows. The app advances the
simulation on a timer in *slices*: each slice runs at most `SLICE_BUDGET_S` of CPU, so a key
press waits for at most one slice plus a redraw (the 100 ms rule), whatever the speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The speeds ``+`` and ``-`` step through.
SPEEDS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, math.inf)
DEFAULT_SPEED = SPEEDS.index(1.0)
#: How often the app advances the simulation (seconds of wall time).
SLICE_INTERVAL_S = 1 / 30
#: The most CPU one slice may take (seconds).
SLICE_BUDGET_S = 0.025
#: The largest step of virtual time one `run_for` call takes inside a slice (ms), so the
#: budget is checked often enough.
CHUNK_MS = 20


def speed_label(speed: float) -> str:
    """``x1``, ``x0.03``, ``max``."""
    if math.isinf(speed):
        return "max"
    return f"x{speed:g}"


@dataclass(slots=True)
class Pacer:
    """Turns wall time into virtual milliseconds to run, carrying fractions over."""

    speed: float = SPEEDS[DEFAULT_SPEED]
    _debt: float = 0.0

    def due(self, wall_elapsed_s: float) -> float:
        """The virtual ms to run after ``wall_elapsed_s`` of wall time (inf at max speed).

        A slice that could not keep up does not leave a debt to repay later: the run simply
        goes slower than asked, instead of racing afterwards.
        """
        if math.isinf(self.speed):
            return math.inf
        self._debt = min(self._debt + self.speed * wall_elapsed_s * 1000, self.speed * 200)
        whole = math.floor(self._debt)
        self._debt -= whole
        return float(whole)
