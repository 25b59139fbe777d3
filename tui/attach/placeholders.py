"""The panes of what the next chapters add: the leases (chapter 7's Lease API).

The attach screen has their tabs already, so adding them later changes no layout. Until then
each says which chapter brings it and what it will show -- never made-up data. (The watch
feed was one until chapter 8 landed: `tui.attach.watchfeed`.)
"""

from __future__ import annotations

from textual.widgets import Static


class Arrives(Static):
    """A pane reserved for a later chapter's feature."""

    DEFAULT_CSS = """
    Arrives {
        height: 1fr;
        content-align: center middle;
        color: $text-muted;
        padding: 1 2;
    }
    """

    def __init__(self, what: str, chapter: int, shows: str, *, id: str) -> None:
        super().__init__(f"{what} arrives in chapter {chapter}.\n\n{shows}", id=id)
        self.chapter = chapter


def leases() -> Arrives:
    return Arrives(
        "Leases",
        7,
        "It will list every lease with its granted TTL, the time left counting down, and the "
        "keys attached to it (etcd's Lease API).",
        id="lease-list",
    )
