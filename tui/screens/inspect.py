"""The inspector (``i``): a node's full Raft state, every message on the wire field by field
(filtered by type, from, to, term), and what the last event changed (the TUI)."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static, TabbedContent, TabPane

from kv.raft import Message
from kv.sim import Cluster

if TYPE_CHECKING:
    from tui.app import SimApp

MESSAGE_FIELDS = ("type", "from_", "to", "term", "log_term", "index", "commit", "reject")


def node_report(cluster: Cluster, node_id: int) -> str:
    """Everything `kv.raft.RawNode.status` and the simulator say about one node."""
    node = cluster.nodes[node_id]
    status = node.status()
    if status is None:
        hard = node.hard_state
        return (
            f"n{node_id} is DOWN. On its disk: term {hard.term}, vote {hard.vote}, "
            f"commit {hard.commit}, log to {node.last_index}."
        )
    lines = [
        f"n{node_id}: {status.soft_state.role}, leader n{status.soft_state.lead}",
        f"hard state: term {status.hard_state.term}, vote {status.hard_state.vote}, "
        f"commit {status.hard_state.commit}",
        f"applied {status.applied}, last index {status.last_index}",
        f"voters {list(status.conf_state.voters)}, learners {list(status.conf_state.learners)}",
    ]
    timer = node.election_timer
    if timer is not None:
        lines.append(f"election timer: {timer[0]} of {timer[1]} ticks")
    if status.lead_transferee:
        lines.append(f"transferring leadership to n{status.lead_transferee}")
    for peer, progress in sorted(status.progress.items()):
        lines.append(
            f"  progress n{peer}: match {progress.match}, next {progress.next}, "
            f"{progress.state}{' (learner)' if progress.is_learner else ''}"
            f"{'' if progress.recent_active else ', not heard from lately'}"
        )
    lines.append("log (last 12): " + " ".join(f"{e.index}:t{e.term}" for e in node.log[-12:]))
    return "\n".join(lines)


def matches(message: Message, query: str) -> bool:
    """``type=app from=1 to=2 term=3`` (any subset; words without ``=`` match the type)."""
    for word in query.split():
        key, _, value = word.partition("=")
        if not value:
            key, value = "type", key
        if key == "type" and value.lower() not in str(message.type).lower():
            return False
        if key in ("from", "to", "term"):
            actual = {"from": message.from_, "to": message.to, "term": message.term}[key]
            if value.lstrip("n") != str(actual):
                return False
    return True


class InspectScreen(ModalScreen[None]):
    """Three tabs: the selected node, the messages on the wire, the last change."""

    DEFAULT_CSS = """
    InspectScreen { align: center middle; }
    InspectScreen > TabbedContent {
        width: 98; max-width: 100%; height: 92%; border: round $accent; background: $surface;
    }
    InspectScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "close")]

    def __init__(self, app: SimApp) -> None:
        super().__init__()
        self.sim = app

    def compose(self) -> ComposeResult:
        session = self.sim.session
        with TabbedContent():
            with TabPane(f"node n{self.sim.selected}", id="inspect-node"):
                yield Static(Text(node_report(session.cluster, self.sim.selected)))
            with TabPane("messages", id="inspect-messages"):
                yield Input(placeholder="filter: type=app from=1 to=2 term=3", id="filter")
                yield DataTable(cursor_type="row", id="messages")
            with TabPane("last change", id="inspect-diff"):
                changes = session.diff()
                lines = [str(change) for change in changes] or ["(nothing changed)"]
                yield Static(Text("\n".join(lines)))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("arrives", *MESSAGE_FIELDS, "entries")
        self.fill("")

    def fill(self, query: str) -> None:
        table = self.query_one(DataTable)
        table.clear()
        known = {f.name for f in fields(Message)}
        for arrival, message in self.sim.session.cluster.in_flight():
            if not matches(message, query):
                continue
            values = [str(getattr(message, name)) for name in MESSAGE_FIELDS if name in known]
            entries = ",".join(f"{e.index}:t{e.term}" for e in message.entries)
            table.add_row(str(arrival), *values, entries or "-")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill(event.value)
