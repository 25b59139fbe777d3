"""What the attach-mode pilot tests share: waiting on the app's state with a deadline.

Nothing sleeps for correctness: `until` lets the app run (``pilot.pause``) and checks a
condition on its state again, and fails with what it last saw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from textual.pilot import Pilot
from textual.widgets import OptionList

from tests.cluster.processes import WaitTimeout, wait_for
from tui.attach import AttachApp
from tui.attach.model import MemberRow, Role

T = TypeVar("T")

#: How long a change on a real cluster (an election, a restart) may take to show.
DEADLINE = 30.0
#: Polls of the app in tests: fast, so a change shows in well under a second.
POLL_INTERVAL = 0.1


async def until(
    pilot: Pilot[None], check: Callable[[], T | None], what: str, timeout: float = DEADLINE
) -> T:
    """Let the app run (``pilot.pause``) until ``check()`` is neither None nor False; return
    it. A timeout says what the members table showed last."""

    async def probe() -> T | None:
        await pilot.pause(0.05)
        result = check()
        return None if result is False else result

    try:
        return await wait_for(probe, what, timeout)
    except WaitTimeout as timeout_error:
        app = pilot.app
        if isinstance(app, AttachApp):
            shown = [(r.name, r.role.value, r.error) for r in app.rows]
            raise WaitTimeout(f"{timeout_error}; members shown: {shown}") from None
        raise


def row(app: AttachApp, name: str) -> MemberRow | None:
    return next((r for r in app.rows if r.name == name), None)


def roles(app: AttachApp) -> dict[str, Role]:
    return {r.name: r.role for r in app.rows}


def one_leader(app: AttachApp) -> MemberRow | None:
    """The leader, once every member answers and exactly one says it leads."""
    if not app.rows or not all(r.up for r in app.rows):
        return None
    leaders = [r for r in app.rows if r.role is Role.LEADER]
    return leaders[0] if len(leaders) == 1 else None


async def choose(pilot: Pilot[None], name: str) -> None:
    """In an open member chooser, pick ``name``."""
    options = pilot.app.screen.query_one(OptionList)
    index = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == name
    )
    options.highlighted = index
    await pilot.press("enter")
