"""SAFETY: Raft's four safety properties (Figure 3), live (the TUI).

The simulator's `kv.sim.SafetyMonitor` checks them at every election, commit and apply; the
first violation freezes the run, turns its property red and says at which event it broke.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

#: The properties, as the panel words them, and the monitor's name for each.
PROPERTIES = (
    ("one leader per term", "Election Safety"),
    ("logs match", "Log Matching"),
    ("leader has all commits", "Leader Completeness"),
    ("same entry applied", "State Machine Safety"),
)


def broken_property(violation: str) -> str:
    """Which property a `kv.sim.SafetyViolation`'s message is about."""
    for _, name in PROPERTIES:
        if name in violation:
            return name
    # "n2 applied index 7, which no node has committed": an apply that breaks State Machine
    # Safety; a committed entry that differs between logs breaks Log Matching too, and the
    # monitor reports that as State Machine Safety.
    return "State Machine Safety"


class SafetyPanel(Widget):
    """A ✓ per property, or the violation that froze the run."""

    DEFAULT_CSS = """
    SafetyPanel {
        border: round $success;
        height: 100%;
        padding: 0 1;
    }
    SafetyPanel.-violated { border: round $error; }
    """

    #: The first violation's message (None: every property holds).
    violation: reactive[str | None] = reactive(None)
    #: Where it happened: the event (position) the run froze at.
    where: reactive[str] = reactive("")

    def on_mount(self) -> None:
        self.border_title = "SAFETY"

    def watch_violation(self, violation: str | None) -> None:
        self.set_class(violation is not None, "-violated")

    def render(self) -> Text:
        text = Text(no_wrap=False)
        broken = broken_property(self.violation) if self.violation else None
        for i, (words, name) in enumerate(PROPERTIES):
            if i:
                text.append("\n")
            if name == broken:
                text.append(f"✗ {words}", style="bold white on red")
            else:
                text.append("✓ ", style="green")
                text.append(words)
        if self.violation:
            text.append(f"\nFROZEN {self.where}: {self.violation}", style="bold red")
        return text
