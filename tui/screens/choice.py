"""A small modal list: pick one of a few options with its key (a node's number) or the
arrows and enter, or click it; escape cancels (the TUI). Every "..." key opens one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Choice(Generic[T]):
    """One option: what it says, the key that picks it at once ("1": n1), its value."""

    label: str
    value: T
    key: str = ""


class ChoiceScreen(ModalScreen[T | None], Generic[T]):
    """Ask for one of ``choices``; dismisses with its value (None if cancelled)."""

    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical {
        width: auto; min-width: 36; max-width: 80; height: auto; max-height: 80%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    ChoiceScreen OptionList { height: auto; max-height: 20; border: none; }
    ChoiceScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, choices: list[Choice[T]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            options = [
                Option(f"{c.key + '  ' if c.key else ''}{c.label}", id=str(i))
                for i, c in enumerate(self.choices)
            ]
            yield OptionList(*options)
            yield Label("key or enter picks · escape cancels", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index].value)

    def on_key(self, event: events.Key) -> None:
        for choice in self.choices:
            if choice.key and event.character == choice.key:
                event.stop()
                self.dismiss(choice.value)
                return

    def action_cancel(self) -> None:
        self.dismiss(None)
