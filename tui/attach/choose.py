"""Choosing members: one (move the leader to it, kill it, restart it) or several (partition).

A modal list of member names; enter picks the highlighted one, or, for several, space marks
and enter confirms. It returns names only; the app decides what to do with them.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, SelectionList
from textual.widgets.option_list import Option


class ChooseMember(ModalScreen[str | None]):
    """Pick one member by name; escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    ChooseMember, ChooseMembers { align: center middle; }
    ChooseMember > Vertical, ChooseMembers > Vertical {
        width: 50; max-width: 100%; height: auto; max-height: 80%;
        border: thick $primary; padding: 0 1; background: $surface;
    }
    ChooseMember OptionList, ChooseMembers SelectionList { height: auto; max-height: 12; }
    """

    def __init__(self, title: str, names: list[tuple[str, str]]) -> None:
        """``names``: (name, what to show for it) for each member offered."""
        super().__init__()
        self.title_text = title
        self.names = names

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield OptionList(*(Option(shown, id=name) for name, shown in self.names))

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseMembers(ModalScreen[list[str] | None]):
    """Mark several members (space), confirm with enter; escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "confirm", "Confirm", priority=True),
    ]

    def __init__(self, title: str, names: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.names = names

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield SelectionList[str](*((name, name) for name in self.names))

    def action_confirm(self) -> None:
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        self.dismiss(None)
