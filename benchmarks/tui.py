"""``python -m benchmarks.tui``: how ``kv tui`` (the embedded simulator's app) holds up.

Five measurements, each against issue 9's goal:

* **startup**: from launching ``kv tui --seed N`` in a real terminal (tmux, 100x30; the
  process is ``python -m kv tui``) to a screen that shows a node as LEADER. The app runs the
  first election before its first frame (`tui.app.run_to_first_leader`), so this is Python's
  and Textual's start-up plus that election's CPU. Goal: under 3 s.
* **r to a new leader**: in the same terminal, from pressing ``r`` to a screen that shows a
  LEADER in a later term, at the default pace (`tui.speed`: the quiet election timeout
  fast-forwarded, the votes at the watch speed). Goal: under 10 s.
* **keypress to screen**: with the simulation at top speed (``+`` pressed up to ``max``),
  from sending a key that selects another node to a screen that shows the selection, by
  polling tmux's copy of the screen (each poll a ``tmux capture-pane``: a few ms, which the
  figure includes). Goal: under 100 ms.
* **rewind**: a 10-minute virtual run (a client put every `PUT_EVERY_MS`) on the TUI's
  network, then `tui.session.Session.seek` to random positions, each followed by the app's
  redraw of every panel (`tui.app.SimApp.jumped`), in Textual's headless mode. Goal: under
  1 s.
* **events per second**: entries of the run (`tui.session.Session.position`) per second of
  wall time at top speed, with the app on (headless Textual: every slice ends with a
  redraw) and without it (`Session.run_for` in a loop), for comparison.

Writes a markdown table to ``--output`` (the raw numbers beside it as JSON) and prints it.
A measurement, not a test: nothing asserts on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

from benchmarks import procstat, report
from benchmarks.arguments import add_report_arguments, apply_quick

DEFAULT_OUTPUT = Path("benchmarks/results/tui.md")
ROOT = Path(__file__).resolve().parents[1]
#: A node's row on the screen: ``n2 LEADER term 3``.
ROW = re.compile(r"n(\d)\s+(LEADER|follower|pre-candidate|candidate|learner|DOWN)\s+term (\d+)")
#: The rewind run: 10 minutes of virtual time, a client put every this many ms.
RUN_MS = 600_000
PUT_EVERY_MS = 200
#: How long a single screen wait may take before the trial counts as failed (s).
WAIT_LIMIT_S = 30.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see ``python -m benchmarks.tui --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tui",
        description="Measure kv tui: startup, r to a new leader, keypress latency at top "
        "speed, rewinds of a 10-minute run, events per second with and without the UI.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--launches", type=int, default=10, help="startups (each then r)")
    parser.add_argument("--keypresses", type=int, default=100, help="keys timed at max speed")
    parser.add_argument("--rewinds", type=int, default=50, help="random rewinds timed")
    parser.add_argument("--run-ms", type=int, default=RUN_MS, help="virtual ms of the rewind run")
    parser.add_argument("--rate-seconds", type=float, default=10.0, help="wall s per rate")
    parser.add_argument("--seed", type=int, default=7, help="the first launch's seed")
    add_report_arguments(
        parser, DEFAULT_OUTPUT, quick_help="a few samples of each, in about a minute"
    )
    args = parser.parse_args(argv)
    apply_quick(
        args,
        argv if argv is not None else sys.argv[1:],
        {"launches": 3, "keypresses": 30, "rewinds": 15, "rate_seconds": 3.0},
    )
    return args


# -- a real terminal ---------------------------------------------------------------------------


class Terminal:
    """A tmux server of its own running one command in a window of ``size``."""

    def __init__(self, command: str, size: tuple[int, int] = (100, 30)) -> None:
        self.socket = f"kv-bench-tui-{uuid.uuid4().hex[:8]}"
        self.started = time.perf_counter()
        self._tmux(
            "new-session", "-d", "-x", str(size[0]), "-y", str(size[1]), "-s", "tui", command
        )

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, cwd=ROOT
        )
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "tui")

    def press(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "tui", *keys)

    def wait_for(self, check: Callable[[str], bool], since: float) -> float:
        """Seconds from ``since`` (a perf_counter) until the screen passes ``check``."""
        deadline = since + WAIT_LIMIT_S
        while time.perf_counter() < deadline:
            if check(self.screen()):
                return time.perf_counter() - since
        raise TimeoutError(f"not on screen within {WAIT_LIMIT_S} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False, cwd=ROOT)


def leader_term(screen: str) -> int | None:
    terms = [int(term) for _, role, term in ROW.findall(screen) if role == "LEADER"]
    return max(terms) if terms else None


def kv_tui(seed: int) -> str:
    return f"{sys.executable} -m kv tui --seed {seed}"


@dataclass(frozen=True, slots=True)
class Launch:
    seed: int
    startup_s: float
    new_leader_s: float


def launch(seed: int) -> Launch:
    """Start ``kv tui``, wait for a leader, press r, wait for a leader in a later term."""
    terminal = Terminal(kv_tui(seed))
    try:
        startup = terminal.wait_for(lambda s: leader_term(s) is not None, terminal.started)
        first = leader_term(terminal.screen()) or 0
        pressed = time.perf_counter()
        terminal.press("r")
        new_leader = terminal.wait_for(lambda s: (leader_term(s) or 0) > first, pressed)
    finally:
        terminal.close()
    return Launch(seed, startup, new_leader)


def keypresses(seed: int, samples: int) -> list[float]:
    """Seconds from a key selecting a node to the screen showing it, at max speed."""
    terminal = Terminal(kv_tui(seed))
    try:
        terminal.wait_for(lambda s: leader_term(s) is not None, terminal.started)
        terminal.press(*["+"] * 12)
        terminal.wait_for(lambda s: "· max ·" in s, time.perf_counter())
        latencies = []
        for i in range(samples):
            node = 2 if i % 2 == 0 else 1
            pressed = time.perf_counter()
            terminal.press(str(node))
            latencies.append(terminal.wait_for(partial(_shows, f"▶n{node}"), pressed))
    finally:
        terminal.close()
    return latencies


def _shows(text: str, screen: str) -> bool:
    return text in screen


# -- headless: rewinds and rates ---------------------------------------------------------------


def long_run(seed: int, run_ms: int) -> tuple[object, float]:
    """A session with ``run_ms`` of virtual time and a put every `PUT_EVERY_MS`; and the
    wall seconds it took to make."""
    from tui.session import Session, actions
    from tui.speed import tui_config

    started = time.perf_counter()
    session = Session.new(nodes=3, seed=seed, config=tui_config())
    for i in range(run_ms // PUT_EVERY_MS):
        session.act(actions.ClientPut(f"k{i % 50}", f"v{i}"))
        session.run_for(PUT_EVERY_MS)
    return session, time.perf_counter() - started


async def _rewinds(session: object, samples: int, seed: int) -> list[float]:
    from tui.app import SimApp
    from tui.session import Session

    assert isinstance(session, Session)
    app = SimApp(session, run=False, warm_up=False)
    rng = random.Random(seed)
    times = []
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(samples):
            target = rng.randrange(session.length)
            started = time.perf_counter()
            session.seek(target)
            app.jumped()
            times.append(time.perf_counter() - started)
            await pilot.pause()
    return times


def rate_without_ui(seed: int, seconds: float) -> float:
    """Entries per wall second of `Session.run_for` alone."""
    from tui.app import run_to_first_leader
    from tui.session import Session
    from tui.speed import tui_config

    session = Session.new(nodes=3, seed=seed, config=tui_config())
    run_to_first_leader(session)
    start, began = session.position, time.perf_counter()
    while time.perf_counter() - began < seconds:
        session.run_for(100)
    return (session.position - start) / (time.perf_counter() - began)


async def _rate_with_ui(seed: int, seconds: float) -> float:
    from tui.app import SimApp
    from tui.session import Session
    from tui.speed import SPEEDS, tui_config

    app = SimApp(Session.new(nodes=3, seed=seed, config=tui_config()))
    async with app.run_test(size=(100, 30)) as pilot:
        app.pacer.speed = SPEEDS[-1]
        await pilot.pause(0.5)
        start, began = app.session.position, time.perf_counter()
        await pilot.pause(seconds)
        return (app.session.position - start) / (time.perf_counter() - began)


# -- the report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Results:
    launches: list[Launch]
    keypress_s: list[float]
    rewind_s: list[float]
    rewind_run_entries: int
    rewind_run_build_s: float
    events_per_s_ui: float
    events_per_s_no_ui: float


def percentile(values: Sequence[float], point: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(point / 100 * len(ordered)) - 1)]


def _s(value: float) -> str:
    return f"{value:.2f} s"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def table(r: Results) -> str:
    startups = [x.startup_s for x in r.launches]
    leaders = [x.new_leader_s for x in r.launches]
    rows = [
        (
            "startup: launch of `kv tui` to a leader on screen (tmux), median / max",
            f"{_s(statistics.median(startups))} / {_s(max(startups))}",
            "< 3 s",
        ),
        (
            "`r` to a leader of a later term on screen (tmux), median / max",
            f"{_s(statistics.median(leaders))} / {_s(max(leaders))}",
            "< 10 s",
        ),
        (
            "keypress to screen at max speed (tmux), p50 / p99",
            f"{_ms(percentile(r.keypress_s, 50))} / {_ms(percentile(r.keypress_s, 99))}",
            "< 100 ms",
        ),
        (
            f"rewind to a random point of a 10-minute run ({r.rewind_run_entries:,} entries),"
            " seek + redraw, median / max",
            f"{_ms(statistics.median(r.rewind_s))} / {_ms(max(r.rewind_s))}",
            "< 1 s",
        ),
        (
            "events per second at max speed: with the UI (headless) / without",
            f"{r.events_per_s_ui:,.0f} / {r.events_per_s_no_ui:,.0f}",
            "",
        ),
    ]
    lines = ["| measure | result | goal |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {value} | {goal} |" for name, value, goal in rows]
    return "\n".join(lines)


def caption(r: Results, args: argparse.Namespace, env: report.Environment) -> list[str]:
    return [
        f"Measured {env.date} on {env.cores} cores ({env.cpu_model}), {env.python}, "
        f"textual {version('textual')}; checkout {env.commit}.",
        f"{len(r.launches)} launches (seeds {args.seed}..{args.seed + len(r.launches) - 1}) "
        f"of `python -m kv tui` in tmux at 100x30; {len(r.keypress_s)} keypresses; "
        f"{len(r.rewind_s)} rewinds of a run built in {r.rewind_run_build_s:.1f} s (a put "
        f"every {PUT_EVERY_MS} ms, keyframes every 500 entries); rates over "
        f"{args.rate_seconds:g} s each.",
        "Screen times poll `tmux capture-pane` in a loop, so they include tmux's own "
        "latency (a few ms per poll). The rewind time is `Session.seek` plus the app's "
        "redraw of every panel, in Textual's headless mode.",
        *args.note,
    ]


def measure(args: argparse.Namespace) -> Results:
    launches = []
    for i in range(args.launches):
        launches.append(launch(args.seed + i))
        _progress(f"launch {i + 1}/{args.launches}: {launches[-1]}")
    presses = keypresses(args.seed, args.keypresses)
    _progress(f"keypresses: p50 {percentile(presses, 50) * 1000:.0f} ms")
    session, built = long_run(args.seed, args.run_ms)
    rewinds = asyncio.run(_rewinds(session, args.rewinds, args.seed))
    _progress(f"rewinds: median {statistics.median(rewinds) * 1000:.0f} ms")
    with_ui = asyncio.run(_rate_with_ui(args.seed, args.rate_seconds))
    without = rate_without_ui(args.seed, args.rate_seconds)
    _progress(f"events/s: {with_ui:,.0f} with the UI, {without:,.0f} without")
    length = getattr(session, "length", 0)
    return Results(launches, presses, rewinds, length, built, with_ui, without)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    results = measure(args)
    load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    args.note = [*args.note, f"Other work on the machine: {load} ({procstat.cores()} cores)."]
    env = report.environment({"textual": version("textual")})
    items = "\n".join(f"- {line}" for line in caption(results, args, env))
    text = f"{table(results)}\n\n{items}\n"
    raw = report.record(env, vars(args), args.note) | {"results": asdict(results)}
    report.save(args.output, text, raw)
    print(text)
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
