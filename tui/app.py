"""`SimApp`: ``kv tui``, the Textual app over the embedded simulator (the TUI).

Theory of operation
-------------------
The app owns a `tui.session.Session` (a `kv.sim.Cluster` with time travel) and never
touches the cluster but through it: a key becomes a session call (``session.act(action)``,
``step``, ``back``, ``seek``), and the screen is redrawn from the session's state.

A timer (`tui.speed.SLICE_INTERVAL_S`) advances the session while the run is not paused, at
the pace `tui.speed` describes: slow enough while something is under way that a message
visibly crosses the wire, fast-forwarded through quiet stretches (only timers and heartbeats
pending; the status line says so). A slice spends the wall time passed since the last one,
in chunks, and never more than `tui.speed.SLICE_BUDGET_S` of CPU, so a key press is handled
within one slice and a redraw even at top speed. After a slice (and after every key)
`refresh_view` reads the session into plain values (`tui.view`, `tui.traffic`) and sets the
widgets' reactive attributes: a widget whose value did not change does not redraw, and the
DOM is never rebuilt. What depends only on the position in the run (nodes, logs, keys, the
event log, the SAFETY panel, which compares every pair of whole logs) is read again only
when the position changed; the clock and the wire, every frame.

A safety violation freezes the session (``session.frozen``): the timer stops advancing,
the SAFETY panel turns red and says at which entry; stepping back and acting forks a new
timeline, which is the way out.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterable
from typing import ClassVar

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, TabbedContent, TabPane

from tui import controls
from tui.session import Session
from tui.session.actions import Action
from tui.speed import (
    SLICE_BUDGET_S,
    SLICE_INTERVAL_S,
    SPEEDS,
    Pacer,
    is_quiet,
    speed_label,
    watch_speed,
)
from tui.traffic import Traffic
from tui.view import key_rows, node_rows
from tui.widgets.happened import EventLog
from tui.widgets.keys import KeysPane
from tui.widgets.logs import LogsPanel
from tui.widgets.nodes import NodesPanel
from tui.widgets.safety import SafetyPanel
from tui.widgets.status import Status, StatusLine
from tui.widgets.timeline import Tick, Timeline, TimelineState
from tui.widgets.wire import WirePane

#: How many lines of narration the event log keeps on screen.
NARRATION_TAIL = 60
#: How many messages the wire pane lists at most.
WIRE_ITEMS = 20
#: How long the first election may take before the screen shows (virtual ms).
FIRST_LEADER_LIMIT_MS = 10_000


class SimApp(App[None]):
    """``kv tui``: a 3-node (1..7) simulated cluster to watch and break (module docstring)."""

    TITLE = "kv tui"
    # At 80x24 the wire, safety and keys panes become tabs (a class on the screen).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012 (Textual's)
    CSS = """
    #top { height: auto; }
    #top NodesPanel { width: 60; }
    #top EventLog { width: 1fr; }
    #bottom-wide { height: 1fr; }
    #bottom-wide WirePane { width: 2fr; }
    #bottom-wide SafetyPanel { width: 30; }
    #bottom-wide KeysPane { width: 1fr; }
    #bottom-tabs { height: 1fr; }
    #bottom-tabs > ContentSwitcher { height: 1fr; }
    #bottom-tabs TabPane { padding: 0; height: 100%; }
    Screen.-narrow #bottom-wide { display: none; }
    Screen.-wide #bottom-tabs { display: none; }
    Screen.-narrow #top NodesPanel { width: 50; }
    """

    BINDINGS: ClassVar[list[BindingType]] = controls.BINDINGS

    def __init__(self, session: Session, *, run: bool = True, warm_up: bool = True) -> None:
        """Show ``session``; ``run``: start running (else paused); ``warm_up``: run to the
        first leader before the first frame, so a leader shows at once (the election is on
        the timeline: step back to watch it)."""
        super().__init__()
        self.session = session
        self.paused = not run
        self.pacer = Pacer(watch_speed(session.config.network))
        #: The last slice ran a quiet stretch fast-forwarded (the status line says so).
        self.fast_forwarding = False
        self.traffic = Traffic()
        self.selected = 1
        self.puts = 0
        self._last_slice = time.perf_counter()
        self._timer: Timer | None = None
        self._shown: tuple[object, ...] = ()
        self._keyframes = 0
        if warm_up:
            run_to_first_leader(session)

    # -- building the screen ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusLine()
        with Horizontal(id="top"):
            yield NodesPanel()
            yield EventLog()
        yield LogsPanel()
        with Horizontal(id="bottom-wide"):
            yield WirePane(id="wire-wide")
            yield SafetyPanel(id="safety-wide")
            yield KeysPane(id="keys-wide")
        with TabbedContent(id="bottom-tabs"):
            with TabPane("wire", id="tab-wire"):
                yield WirePane(id="wire-tab")
            with TabPane("safety", id="tab-safety"):
                yield SafetyPanel(id="safety-tab")
            with TabPane("keys", id="tab-keys"):
                yield KeysPane(id="keys-tab")
        yield Timeline()
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()
        self._timer = self.set_interval(SLICE_INTERVAL_S, self.advance)

    def on_unmount(self) -> None:
        gc.unfreeze()  # `_keep_gc_short`: give the process its collector back

    def _keep_gc_short(self) -> None:
        """After a new keyframe, move everything alive into the collector's permanent
        generation (`gc.freeze`): keyframes live as long as the session, and a full
        collection walks every object there is, so without this its pause grows with the
        run (tens of ms after ten seconds at max speed) and holds up key presses."""
        keyframes = len(self.session.timeline.keyframes)
        if keyframes != self._keyframes:
            self._keyframes = keyframes
            gc.freeze()

    @property
    def cluster(self) -> object:
        """The live cluster (what the log panel rereads when scrolled)."""
        return self.session.cluster

    # -- running ------------------------------------------------------------------------------

    async def advance(self) -> None:
        """One slice of simulation (the timer calls this), then a redraw.

        It yields to the event loop after every chunk, so a key pressed during the slice is
        handled at once, between two chunks, where the session is whole; the slice stops if
        the key paused the run or put another session up.
        """
        now = time.perf_counter()
        elapsed, self._last_slice = now - self._last_slice, now
        if not self._can_run():
            return
        pacer, session = self.pacer, self.session
        pacer.give(elapsed)
        deadline = now + SLICE_BUDGET_S
        checks = pacer.fast_forward and pacer.speed != SPEEDS[-1]
        while time.perf_counter() < deadline and self._can_run() and self.session is session:
            quiet = checks and is_quiet(session.cluster)
            chunk = pacer.allowance(quiet)
            if chunk <= 0:
                break
            session.run_for(chunk)
            pacer.spend(chunk, quiet)
            self.fast_forwarding = quiet
            await asyncio.sleep(0)
        if self.is_running:
            self._keep_gc_short()
            self.refresh_view()

    def _can_run(self) -> bool:
        # Not while shutting down (the widgets are going away), paused, frozen or at a cue.
        return (
            self.is_running
            and not self.paused
            and self.session.frozen is None
            and (not self.at_cue)
        )

    def replace_session(self, session: Session, *, run: bool = True) -> None:
        """Show another session (a scenario's, a new seed's): at the speed at which its
        messages can be followed, running unless ``run`` is False."""
        self.session = session
        self.selected = min(session.cluster.nodes)
        self.paused = not run
        self.pacer.speed = watch_speed(session.config.network)
        gc.unfreeze()  # the old session may go now (`_keep_gc_short`)
        self._keyframes = 0
        self.jumped()

    def jumped(self) -> None:
        """Time jumped (a rewind, another timeline or session): redraw the wire afresh."""
        self.traffic.reset()
        self.fast_forwarding = False
        self.refresh_view()

    @property
    def at_cue(self) -> bool:
        """A scenario paused at one of its steps (space goes on)."""
        cue = self.session.cue
        return cue is not None and cue.pause

    def do(self, action: Action) -> None:
        """Take ``action`` now (in the past: a fork), and show its effect."""
        try:
            self.session.act(action)
        except (ValueError, KeyError, RuntimeError) as refusal:
            self.notify(f"{action}: {refusal}", severity="warning")
        self.refresh_view()

    # -- reading the session into the widgets -------------------------------------------------

    def refresh_view(self) -> None:
        main = self.screen_stack[0]  # the main screen, also under a modal one
        session = self.session
        cluster = session.cluster
        frozen = session.frozen
        state = "FROZEN" if frozen is not None else ("PAUSED" if self.paused else "RUNNING")
        if self.at_cue and frozen is None:
            state = "STEP (space goes on)"
        timeline = ""
        if len(session.timelines) > 1:
            timeline = f"timeline {session.current + 1}/{len(session.timelines)}"
        fast = ""
        if self.fast_forwarding and state == "RUNNING":
            fast = f"fast-forward {speed_label(self.pacer.fast_speed)} (quiet)"
        main.query_one(StatusLine).status = Status(
            session.seed,
            len(cluster.ids),
            cluster.now,
            speed_label(self.pacer.speed),
            state,
            timeline,
            str(session.cue) if session.cue is not None else "",
            fast,
        )
        self.traffic.update(cluster, time.monotonic())
        items = self.traffic.items(cluster.now, WIRE_ITEMS)
        for wire in main.query(WirePane):
            wire.items, wire.total = items, self.traffic.in_flight
            wire.lost = cluster.network.dropped.total()
        if self.selected not in cluster.nodes:
            self.selected = min(cluster.nodes)
        shown = (session, session.current, session.position, self.selected)
        if shown != self._shown:
            self._shown = shown
            self._show_position(main)

    def _show_position(self, main: Screen[object]) -> None:
        """The panels that change only from one entry of the run to the next."""
        session = self.session
        cluster, frozen = session.cluster, session.frozen
        nodes = main.query_one(NodesPanel)
        nodes.rows = node_rows(cluster)
        nodes.selected = self.selected
        main.query_one(EventLog).lines = tuple(
            f"{line.time_ms / 1000:.3f} {line.text}"
            for line in session.narration(max(0, len(cluster.events) - NARRATION_TAIL))
        )
        main.query_one(LogsPanel).show(cluster)
        node = cluster.nodes[self.selected]
        rows = key_rows(node)
        for keys in main.query(KeysPane):
            keys.node, keys.rows, keys.up = self.selected, rows, node.up
        properties = tuple(session.safety())
        where = f"at entry {frozen.position} ({frozen.cause})" if frozen is not None else ""
        for safety in main.query(SafetyPanel):
            safety.properties, safety.frozen = properties, where
        ticks = tuple(Tick(m.position, m.kind.value, m.label) for m in session.marks)
        main.query_one(Timeline).state = TimelineState(session.position, session.length, ticks)

    # -- messages from widgets -------------------------------------------------------------------

    def on_nodes_panel_selected(self, message: NodesPanel.Selected) -> None:
        self.select_node(message.node)

    def on_timeline_seek(self, message: Timeline.Seek) -> None:
        self.paused = True
        self.session.seek(message.position)
        self.jumped()

    def select_node(self, node: int) -> None:
        if node in self.session.cluster.nodes:
            self.selected = node
            self.refresh_view()

    # -- the command palette: every action by name --------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in controls.BINDINGS:
            if isinstance(binding, Binding) and binding.description:
                action = binding.action

                async def run(action: str = action) -> None:
                    await self.run_action(action)

                yield SystemCommand(binding.description, controls.help_of(binding), run)

    # -- the actions the keys run (tui.controls maps keys to these) ---------------------------

    def action_toggle_pause(self) -> None:
        if self.at_cue:
            self.session.resume()
            self.paused = False
        else:
            self.paused = not self.paused
        self._last_slice = time.perf_counter()
        self.refresh_view()

    def action_step(self) -> None:
        self.paused = True
        self.session.step()
        self.refresh_view()

    def action_step_back(self) -> None:
        self.paused = True
        self.session.back()
        self.jumped()

    def action_speed(self, delta: int) -> None:
        index = SPEEDS.index(self.pacer.speed) + delta
        self.pacer.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index))]
        self.refresh_view()

    def action_fast_forward(self) -> None:
        """Fast-forward quiet stretches, or not (then heartbeats cross at the watch speed)."""
        self.pacer.fast_forward = not self.pacer.fast_forward
        self.fast_forwarding = False
        state = "on" if self.pacer.fast_forward else "off"
        self.notify(f"fast-forward through quiet stretches: {state}")
        self.refresh_view()

    def new_run(self, seed: int) -> None:
        """Start again from ``seed``: same nodes and configuration, a new cluster (RaftScope
        has no seeds; here a seed is the whole run, so this is how to see another one)."""
        old = self.session
        session = Session(old.nodes, seed, old.config, keyframe_every=old.keyframe_every)
        run_to_first_leader(session)
        self.replace_session(session, run=not self.paused)

    def action_select(self, node: int) -> None:
        self.select_node(node)

    def save_trace(self, path: str | None) -> None:
        if path is None:
            return
        try:
            self.session.save(path)
        except OSError as error:
            self.notify(f"could not save: {error}", severity="error")
            return
        self.notify(f"saved to {path}: kv tui --load {path} opens it again")

    def action_controls(self, name: str) -> None:
        """The keys that need a picker or a screen first (`tui.controls`)."""
        controls.run(self, name)


def run_to_first_leader(session: Session) -> None:
    """Run a new session (at position 0) to its first leader, so that the first frame shows
    one (the election is on the timeline: step back to watch it)."""
    if session.position != 0:
        return
    end = session.cluster.now + FIRST_LEADER_LIMIT_MS
    while session.cluster.leader() is None and session.cluster.now < end:
        if not session.step() or session.frozen is not None:
            break
