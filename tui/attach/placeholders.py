"""The panes of what the next chapters add: the watch feed and the leases.

The attach screen has their tabs already, so adding them later changes no layout. Until then
each says which chapter brings it and what it will show -- never made-up data.
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


def watch_feed() -> Arrives:
    return Arrives(
        "Watch feed",
        8,
        "It will show every change to the keys as the cluster applies it (etcd's Watch API): "
        "revision, PUT or DELETE, key and value, live.",
        id="watch-feed",
    )


def leases() -> Arrives:
    return Arrives(
        "Leases",
        7,
        "It will list every lease with its granted TTL, the time left counting down, and the "
        "keys attached to it (etcd's Lease API).",
        id="lease-list",
    )
