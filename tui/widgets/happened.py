"""WHAT HAPPENED: the run told in sentences, newest at the bottom (the TUI).

The sentences are the ``str()`` of the core's and the simulator's events (`kv.raft.events`,
`kv.sim.timeline.events`) -- the same lines the tests and the chapters print -- stamped with the
virtual time in seconds. Stepping back in time takes lines away again.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

#: Words that make a line stand out (an election, a crash, a violation).
_HIGHLIGHTS = (
    ("became leader", "bold green"),
    ("crashed", "bold red"),
    ("restarted", "yellow"),
    ("network:", "magenta"),
    ("VIOLATION", "bold white on red"),
    ("became candidate", "yellow"),
)


class EventLog(Widget):
    """The last lines of the narration that fit, newest last."""

    DEFAULT_CSS = """
    EventLog {
        border: round $primary;
        height: 100%;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    #: The narration so far (the app keeps only a tail of it here).
    lines: reactive[tuple[str, ...]] = reactive(())

    def on_mount(self) -> None:
        self.border_title = "WHAT HAPPENED"

    def render(self) -> Text:
        height = max(1, self.content_size.height)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, line in enumerate(self.lines[-height:]):
            if i:
                text.append("\n")
            style = next((s for word, s in _HIGHLIGHTS if word in line), "")
            text.append(line, style=style)
        return text
