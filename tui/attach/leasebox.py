"""The LEASES tab's two questions: the TTL of a new lease, and "revoke this one?" (chapter 7).

Each only answers; the lease list sends the LeaseGrant or LeaseRevoke.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

#: The TTL offered in the grant box (etcdctl has no default; a minute is a useful one to watch).
DEFAULT_TTL = 60

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 60; max-width: 100%; height: auto;
    border: thick $primary; padding: 0 1; background: $surface;
}}
{name} Horizontal {{ height: auto; }}
{name} Button {{ margin: 0 1 0 0; }}
"""


class GrantBox(ModalScreen[int | None]):
    """A TTL in seconds for a new lease; escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = _CSS.format(name="GrantBox")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Grant a lease with a TTL of (seconds; the member may raise it):")
            yield Input(str(DEFAULT_TTL), type="integer", id="ttl")
            with Horizontal():
                yield Button("Grant", variant="primary", id="grant")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#grant")
    def grant(self) -> None:
        text = self.query_one("#ttl", Input).value
        if not text.isdigit() or int(text) <= 0:
            self.notify("a TTL is a whole number of seconds above 0", severity="error")
            return
        self.dismiss(int(text))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmRevoke(ModalScreen[bool]):
    """Revoke a lease (its keys are deleted with it)? enter or y confirms; escape or n not."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Revoke"),
        Binding("escape,n", "answer(False)", "Keep"),
    ]
    DEFAULT_CSS = _CSS.format(name="ConfirmRevoke")

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Revoke {self.what}? Its keys are deleted with it.")
            with Horizontal():
                yield Button("Revoke", variant="error", id="revoke")
                yield Button("Keep", id="keep")

    def on_mount(self) -> None:
        self.query_one("#revoke", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "revoke")

    def action_answer(self, revoke: bool) -> None:
        self.dismiss(revoke)
