"""The put/delete box: a modal with a key and a value, and what to do with them.

Opened with the highlighted key and its value filled in (escaped as the browser shows them,
`tui.attach.browse.preview`, and read back with `tui.attach.browse.parse_bytes`), so editing a
key is ``c``, change the value, enter. It only says what to do (`Edit`); the app sends it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tui.attach.browse import parse_bytes


class Operation(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Edit:
    """One write for the app to send: a Put of ``key`` = ``value``, or a DeleteRange of
    ``key``."""

    operation: Operation
    key: bytes
    value: bytes = b""


class EditBox(ModalScreen[Edit | None]):
    """Put a key, or delete it; escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+d", "delete", "Delete key", priority=True),
    ]

    DEFAULT_CSS = """
    EditBox { align: center middle; }
    EditBox > Vertical {
        width: 70; max-width: 100%; height: auto;
        border: thick $primary; padding: 0 1; background: $surface;
    }
    EditBox Horizontal { height: auto; }
    EditBox Button { margin: 0 1 0 0; }
    """

    def __init__(self, key: str = "", value: str = "") -> None:
        super().__init__()
        self.key_text = key
        self.value_text = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Put or delete a key (\\xNN, \\n escapes allowed)")
            yield Input(self.key_text, placeholder="key", id="key")
            yield Input(self.value_text, placeholder="value", id="value")
            with Horizontal():
                yield Button("Put", variant="primary", id="put")
                yield Button("Delete", variant="error", id="delete")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#value" if self.key_text else "#key", Input).focus()

    def _edit(self, operation: Operation) -> None:
        try:
            key = parse_bytes(self.query_one("#key", Input).value)
            value = parse_bytes(self.query_one("#value", Input).value)
        except ValueError as error:
            self.notify(f"cannot read that: {error}", severity="error")
            return
        if not key:
            self.notify("a key is needed (etcd: key is not provided)", severity="error")
            return
        self.dismiss(Edit(operation, key, value if operation is Operation.PUT else b""))

    @on(Input.Submitted)
    @on(Button.Pressed, "#put")
    def action_put(self) -> None:
        self._edit(Operation.PUT)

    @on(Button.Pressed, "#delete")
    def action_delete(self) -> None:
        self._edit(Operation.DELETE)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
