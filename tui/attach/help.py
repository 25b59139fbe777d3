"""The help screen (``?``): what the screen shows, and every key, grouped.

The keys are read from the widgets' own ``BINDINGS``, so the help cannot drift from what the
keys do; the command palette (ctrl+p) lists the same actions by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

ABOUT = "\n\n".join(
    [
        "kv tui, attached to a real cluster: every number comes from the members' public API.",
        "MEMBERS: one row per member from its own Maintenance.Status: its role as a word "
        "(LEADER, follower, learner, no leader, DOWN), term, raft index (the last entry it "
        "has), applied index, db size and the part in use, version, seconds since it last "
        "answered. A member that does not answer within a second is DOWN and is asked again "
        "after a growing pause (0.5 s, 1 s, 2 s ... at most 8 s).",
        "TRENDS: term, raft index and db size of each member over the last polls.",
        "KEYS: a prefix, a page of keys at a time: value, version, create and mod revision.",
        "WATCH: every change under a prefix as the cluster applies it (etcd's Watch API): "
        "revision, PUT or DELETE, key, value, and with v the value before. The last 500 are "
        "kept. When the watched member dies the feed goes on on another one from the next "
        "revision, nothing lost or repeated; a watch whose revisions were compacted away "
        "says so and stops.",
        "LEASES: every lease (etcd's Lease API): its ID in hex as etcdctl prints it, the TTL it "
        "was granted, the time left counting down between two polls, and its keys (how many, "
        "the first few). At most 50 are shown; the line above says how many more there are. "
        "A lease that expires or is revoked leaves the list, and its keys the key browser.",
        "",
    ]
)


def key_name(key: str) -> str:
    """``right_square_bracket`` -> ``]``: keys as they are printed on keyboards."""
    names = {
        "question_mark": "?",
        "slash": "/",
        "right_square_bracket": "]",
        "left_square_bracket": "[",
    }
    return ",".join(names.get(k, k) for k in key.split(","))


def help_text(groups: Iterable[tuple[str, Iterable[BindingType]]]) -> str:
    """The help's text: `ABOUT`, then for each group its keys and what they do."""
    lines = [ABOUT]
    for title, bindings in groups:
        keys = [b for b in bindings if isinstance(b, Binding) and b.description]
        if keys:
            lines.append(title.upper())
            lines.extend(f"  {key_name(b.key):<10} {b.description}" for b in keys)
            lines.append("")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Every key and what the panes show; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close help"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 100%; height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.text, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
