"""When the endpoints are a ``kv cluster``: finding its directory, and breaking it on purpose.

A real cluster offers no API to kill or partition its members; a ``kv cluster`` does, as
commands (`kv.cluster.control`) that act on the state file in its data directory. Attach mode
uses exactly those functions -- the ones ``kv cluster kill/restart/partition/heal`` run -- so
the TUI and a second terminal can take turns on one cluster, both holding its lock.

Which directory: the one given (``--cluster-dir``), else ``./kv-cluster`` (the default of
``kv cluster start``'s ``--data-dir``) -- but only when every endpoint given is a member of
the cluster described there, so that attaching to some other cluster from a directory that
happens to hold a stale ``kv-cluster`` never offers to kill its members.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kv.cluster import control
from kv.cluster.layout import DEFAULT_DATA_DIR, ClusterError, Layout
from kv.cluster.state import load
from tui.attach.model import normalise_endpoint


def find_cluster(endpoints: list[str], cluster_dir: Path | None) -> LocalCluster | None:
    """The ``kv cluster`` that ``endpoints`` belong to, or None (see the module docstring).

    Raises:
        ClusterError: ``cluster_dir`` was given but holds no cluster these endpoints belong to.
    """
    root = Path(DEFAULT_DATA_DIR) if cluster_dir is None else cluster_dir
    try:
        state = load(root)
    except ClusterError:
        if cluster_dir is not None:
            raise
        return None
    if state is not None and belongs(endpoints, state.layout):
        return LocalCluster(state.layout)
    if cluster_dir is not None:
        raise ClusterError(
            f"the endpoints {','.join(endpoints)} are not the members of the cluster in "
            f"{cluster_dir}" + ("" if state is None else f" ({state.layout.endpoints})")
        )
    return None


def belongs(endpoints: list[str], layout: Layout) -> bool:
    """Is every endpoint a client endpoint of ``layout``'s members (``localhost`` counts as
    ``127.0.0.1``, the only host a ``kv cluster`` listens on)?"""
    members = {member.endpoint for member in layout.members}
    given = {normalise_endpoint(e).replace("localhost:", "127.0.0.1:") for e in endpoints}
    return bool(given) and given <= members


@dataclass(frozen=True, slots=True)
class LocalCluster:
    """A ``kv cluster`` the TUI may act on; each method blocks (run it in a thread) and
    returns what ``kv cluster`` would print, or raises `ClusterError`."""

    layout: Layout

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def names(self) -> list[str]:
        return [member.name for member in self.layout.members]

    def kill(self, name: str) -> list[str]:
        return [control.kill(self.root, name)]

    def restart(self, name: str) -> list[str]:
        return [control.restart(self.root, name)]

    def partition(self, names: list[str]) -> list[str]:
        return control.partition(self.root, names)

    def heal(self) -> list[str]:
        return control.heal(self.root)
