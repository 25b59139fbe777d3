"""The TUI's pace: how fast the simulation runs against the wall clock (the TUI).

Two wishes pull apart. A person must be able to follow one message from one node to the
next, which in a LAN takes a few milliseconds; and after ``r`` a new leader must show within
seconds, though Raft waits a whole election timeout (1-2 s of etcd's time) before anyone
campaigns. So the run has two speeds:

* the *watch* speed (`Pacer.speed`, ``+``/``-``) while something worth watching is under
  way: a vote, an append, a client's request, a disk write. By default it is the speed at
  which an average message of the session's network takes `CROSSING_S` to cross the wire
  (`watch_speed`): x0.05 on the TUI's own network, whose delays are 10-50 ms
  (`TUI_NETWORK`, a slow LAN, so that a message has a length you can see);
* the *fast-forward* speed (`Pacer.fast_speed`) while the run is quiet (`is_quiet`): only
  timers are pending, or heartbeats and their answers. An election timeout then fills its bar
  in a second or less, and the status line says ``fast-forward``.

A speed is virtual milliseconds per wall millisecond. The app advances the simulation on a
timer in *slices* (`SLICE_INTERVAL_S`): each slice spends the wall time since the last one
(`Pacer.give`), in chunks of at most `CHUNK_MS` virtual ms, deciding quiet or not before
each chunk; and it never takes more than `SLICE_BUDGET_S` of CPU, so a key press waits for
at most one slice and a redraw (the 100 ms rule), whatever the speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from kv.raft import MessageType
from kv.sim import Cluster, NetworkConfig, SimConfig
from kv.sim.timeline.tasks import TaskKind

#: The speeds ``+`` and ``-`` step through.
SPEEDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 3.0, 10.0, 100.0, math.inf)
#: How long an average message takes to cross the wire at the default watch speed (wall s).
CROSSING_S = 0.6
#: Quiet stretches run this many times faster than the watch speed, and at least at
#: `FAST_FORWARD_MIN` (x2: an election timeout of 1-2 s takes 0.5-1 s on screen).
FAST_FORWARD_FACTOR = 20
FAST_FORWARD_MIN = 2.0
#: The network of the TUI's own runs: 10-50 ms one way. kv.sim's default (1-10 ms, a quiet
#: LAN) is kept for the tests; here a message needs a length the eye can follow. Heartbeats
#: go every 100 ms and elections wait 1000-2000 ms, so Raft's timing rule (broadcast time
#: well under the election timeout, §5.6) still holds by a factor of ten.
TUI_NETWORK = NetworkConfig(delay_ms=(10, 50))
#: How often the app advances the simulation (seconds of wall time).
SLICE_INTERVAL_S = 1 / 30
#: The most CPU one slice may take (seconds).
SLICE_BUDGET_S = 0.025
#: The largest step of virtual time one `run_for` call takes inside a slice (ms): quietness
#: is checked this often, and the CPU budget too.
CHUNK_MS = 10
#: Wall time a slow slice may leave to catch up later (s): past it, the run goes slower
#: than asked rather than racing afterwards.
MAX_CREDIT_S = 0.1

#: Messages that do not make a stretch worth watching: the leader's "I am still here" and
#: the answers (unless they carry a ReadIndex context: a linearizable read is under way).
_QUIET_MESSAGES = frozenset({MessageType.HEARTBEAT, MessageType.HEARTBEAT_RESP})


def tui_config(base: SimConfig | None = None) -> SimConfig:
    """``base`` (default: kv.sim's) on the TUI's network (`TUI_NETWORK`)."""
    return replace(base if base is not None else SimConfig(), network=TUI_NETWORK)


def speed_label(speed: float) -> str:
    """``x1``, ``x0.05``, ``max``."""
    if math.isinf(speed):
        return "max"
    return f"x{speed:g}"


def watch_speed(network: NetworkConfig) -> float:
    """The speed of `SPEEDS` at which an average message of ``network`` takes about
    `CROSSING_S` of wall time (the nearest on a log scale): x0.05 for 10-50 ms, x0.01 for
    kv.sim's default 1-10 ms."""
    low, high = network.delay_ms
    target = max(0.5, (low + high) / 2) / (CROSSING_S * 1000)
    finite = [s for s in SPEEDS if not math.isinf(s)]
    return min(finite, key=lambda s: abs(math.log(s / target)))


def is_quiet(cluster: Cluster) -> bool:
    """Nothing worth watching is pending: only timers (ticks, a scheduled restart, a client's
    request timeout), and heartbeats or their answers on the wire."""
    config = cluster.config
    # A client task further off than a trip to a member (or a retry) is the request's
    # timeout, which stays pending after the answer came.
    horizon = cluster.now + max(config.client_delay_ms[1], config.retry_backoff_ms)
    for task in cluster.control.pending():
        if task.kind in (TaskKind.TICK, TaskKind.FAULT):
            continue
        if task.kind is TaskKind.CLIENT and task.time > horizon:
            continue
        message = task.message
        if message is not None and message.type in _QUIET_MESSAGES and not message.context:
            continue
        return False
    return True


@dataclass(slots=True)
class Pacer:
    """Turns wall time into virtual milliseconds to run, at the watch speed or, in a quiet
    stretch, the fast-forward one (module docstring)."""

    speed: float = 0.05
    #: Run quiet stretches at `fast_speed` (the ``F`` key turns it off).
    fast_forward: bool = True
    _credit_s: float = 0.0

    @property
    def fast_speed(self) -> float:
        return max(FAST_FORWARD_MIN, self.speed * FAST_FORWARD_FACTOR)

    def speed_now(self, quiet: bool) -> float:
        return self.fast_speed if quiet and self.fast_forward else self.speed

    def give(self, wall_elapsed_s: float) -> None:
        """Wall time passed: the run may spend it."""
        self._credit_s = min(self._credit_s + wall_elapsed_s, MAX_CREDIT_S)

    def allowance(self, quiet: bool) -> int:
        """The virtual ms the run may take now, at most `CHUNK_MS` (0: wait for more wall
        time)."""
        speed = self.speed_now(quiet)
        if math.isinf(speed):
            return CHUNK_MS
        return min(CHUNK_MS, math.floor(self._credit_s * speed * 1000))

    def spend(self, virtual_ms: int, quiet: bool) -> None:
        """The run took ``virtual_ms``: pay for it in wall time."""
        speed = self.speed_now(quiet)
        if not math.isinf(speed):
            self._credit_s -= virtual_ms / (speed * 1000)
