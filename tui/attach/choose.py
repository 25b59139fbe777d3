"""Choosing members: one (move the leader to it, kill it, restart it) or several (partition).

A modal list of member names; enter picks the highlighted one, or, for several, space marks
and enter confirms. It returns names only; the app decides what to do with them.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Label, OptionList, SelectionList
from textual.widgets.option_list import Option

Chosen = TypeVar("Chosen")


class Choice(ModalScreen[Chosen | None]):
    """A titled list in a box; escape cancels (the answer is None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    Choice { align: center middle; }
    Choice > Vertical {
        width: 50; max-width: 100%; height: auto; max-height: 80%;
        border: thick $primary; padding: 0 1; background: $surface;
    }
    Choice OptionList, Choice SelectionList { height: auto; max-height: 12; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def choices(self) -> Widget:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield self.choices()

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseMember(Choice[str]):
    """Pick one member by name (enter)."""

    def __init__(self, title: str, names: list[tuple[str, str]]) -> None:
        """``names``: (name, what to show for it) for each member offered."""
        super().__init__(title)
        self.names = names

    def choices(self) -> Widget:
        return OptionList(*(Option(shown, id=name) for name, shown in self.names))

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class ChooseMembers(Choice[list[str]]):
    """Mark several members (space), confirm with enter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "confirm", "Confirm", priority=True),
    ]

    def __init__(self, title: str, names: list[str]) -> None:
        super().__init__(title)
        self.names = names

    def choices(self) -> Widget:
        return SelectionList[str](*((name, name) for name in self.names))

    def action_confirm(self) -> None:
        self.dismiss(list(self.query_one(SelectionList).selected))
