"""The status line at the top: mode, seed, nodes, virtual time, speed, whether the run is
RUNNING, PAUSED or FROZEN, and whether a quiet stretch is being fast-forwarded (the TUI)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


@dataclass(frozen=True, slots=True)
class Status:
    seed: int
    nodes: int
    time_ms: int
    speed: str
    state: str  # "RUNNING", "PAUSED", "FROZEN", "NEXT-EVENT"
    timeline: str = ""  # "timeline 2/3" once forked
    cue: str = ""  # a scenario's step: "step 2 of 4: ..."
    fast: str = ""  # "fast-forward x2 (quiet)" while a quiet stretch is skipped through


_STATE_STYLES = {
    "RUNNING": "bold green",
    "PAUSED": "bold yellow",
    "FROZEN": "bold white on red",
    "STEP (space goes on)": "bold cyan",
}


class StatusLine(Widget):
    """One line: ``kv tui · simulator · seed 7 · 3 nodes · t=12.340 s · x0.05 · RUNNING``."""

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    status: reactive[Status] = reactive(Status(0, 0, 0, "", "PAUSED"))

    def render(self) -> Text:
        s = self.status
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("kv tui", style="bold")
        text.append(f" · simulator · seed {s.seed} · {s.nodes} nodes · ")
        text.append(f"t={s.time_ms / 1000:.3f} s", style="bold")
        text.append(f" · {s.speed} · ")
        text.append(s.state, style=_STATE_STYLES.get(s.state, ""))
        if s.fast:
            text.append(f" · {s.fast}", style="bold magenta")
        if s.timeline:
            text.append(f" · {s.timeline}")
        if s.cue:
            text.append(f" · {s.cue}", style="bold cyan")
        else:
            text.append("   ? help  ^p commands", style="dim")
        return text
