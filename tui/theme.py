"""Colours and small drawing helpers shared by the TUI's widgets (the TUI).

Colour only adds: every state the screen shows is also a word or a mark (roles as words,
``░`` for an uncommitted entry, ``!`` for a divergent one), so the screen reads the same
without colour (``NO_COLOR``) and in a snapshot.
"""

from __future__ import annotations

#: Entries and terms are coloured by term, cycling through these.
TERM_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "orange3")

#: A role word's style.
ROLE_STYLES = {
    "LEADER": "bold green",
    "follower": "default",
    "pre-candidate": "yellow",
    "candidate": "bold yellow",
    "learner": "cyan",
    "DOWN": "bold red",
    "removed": "dim",
}


def term_colour(term: int) -> str:
    """The colour of term ``term`` (term 0 has none)."""
    return TERM_COLOURS[(term - 1) % len(TERM_COLOURS)] if term > 0 else "default"


def bar(fill: float, width: int) -> str:
    """A bar ``width`` cells wide, filled to ``fill`` (0..1): ``▕██████░░░░▏``."""
    full = round(max(0.0, min(1.0, fill)) * width)
    return "▕" + "█" * full + "░" * (width - full) + "▏"
