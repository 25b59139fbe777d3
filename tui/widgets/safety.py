"""SAFETY: Raft's four safety properties (Figure 3), live (the TUI).

The simulator's `kv.sim.SafetyMonitor` checks them at every election, commit and apply
(`tui.session.Session.safety`); the first violation freezes the run, turns its property red
and says at which entry of the timeline it broke.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.session.views import Property, PropertyStatus

#: How the panel words each property.
WORDS = {
    Property.ELECTION_SAFETY: "one leader per term",
    Property.LOG_MATCHING: "logs match",
    Property.LEADER_COMPLETENESS: "leader has all commits",
    Property.STATE_MACHINE_SAFETY: "same entry applied",
}


class SafetyPanel(Widget):
    """A ✓ per property, or a ✗ and the violation that froze the run."""

    DEFAULT_CSS = """
    SafetyPanel {
        border: round $success;
        height: 100%;
        padding: 0 1;
    }
    SafetyPanel.-violated { border: round $error; }
    """

    #: The four properties, as `tui.session.Session.safety` reports them.
    properties: reactive[tuple[PropertyStatus, ...]] = reactive(())
    #: Where the run froze ("" while it runs): the entry and what it was.
    frozen: reactive[str] = reactive("")

    def on_mount(self) -> None:
        self.border_title = "SAFETY"

    def watch_properties(self, properties: tuple[PropertyStatus, ...]) -> None:
        self.set_class(not all(p.holds for p in properties), "-violated")

    def render(self) -> Text:
        text = Text()
        for i, status in enumerate(self.properties):
            if i:
                text.append("\n")
            words = WORDS[status.property]
            if status.holds:
                text.append("✓ ", style="green")
                text.append(words)
            else:
                text.append(f"✗ {words}", style="bold white on red")
        broken = [p.detail for p in self.properties if not p.holds]
        if broken:
            text.append(f"\nFROZEN {self.frozen}: {broken[0]}", style="bold red")
        return text
