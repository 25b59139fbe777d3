"""Regenerate the TUI page's screenshots (docs/images/tui/*.svg) from fixed seeds.

    .venv/bin/python docs/screenshots.py

Each screenshot is ``kv tui``'s app (`tui.app.SimApp`) over a seeded session on the TUI's own
network, driven to a moment worth showing and paused there, then exported with Textual's SVG
export (``App.export_screenshot``) in its headless mode: the same seed gives the same picture.
The script is kept out of the site (``exclude_docs`` in mkdocs.yml).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kv.raft import MessageType
from tui.app import SimApp
from tui.session import Session, actions
from tui.session.scenarios import SCENARIOS
from tui.speed import tui_config

OUT = Path(__file__).resolve().parent / "images" / "tui"
SEED = 7


def _app(session: Session | None = None) -> SimApp:
    if session is None:
        session = Session.new(nodes=3, seed=SEED, config=tui_config())
    return SimApp(session, run=False)


def _run_until(app: SimApp, check: Callable[[SimApp], bool], limit_ms: int = 20_000) -> None:
    """Run the session 1 ms at a time, redrawing, until ``check`` holds (the wire pane sees
    each message leave, as it does when the app runs)."""
    session = app.session
    end = session.now + limit_ms
    while not check(app):
        if session.now >= end:
            raise RuntimeError(f"seed {session.seed}: not reached within {limit_ms} ms")
        session.run_for(1)
        app.refresh_view()


def _on_wire(*types: MessageType) -> Callable[[SimApp], bool]:
    def check(app: SimApp) -> bool:
        return any(m.type in types for _, m in app.session.cluster.in_flight())

    return check


def _lost(app: SimApp) -> bool:
    return any(item.lost for item in app.traffic.items(app.session.now, 20))


def main_screen(app: SimApp) -> None:
    app.do(actions.ClientPut("k0", "v1"))
    app.session.run_for(400)
    app.do(actions.ClientPut("k1", "v2"))
    _run_until(app, lambda a: any(m.entries for _, m in a.session.cluster.in_flight()))
    app.session.run_for(12)
    app.refresh_view()


def election(app: SimApp) -> None:
    app.do(actions.RestartLeader())
    _run_until(app, _on_wire(MessageType.VOTE))
    app.session.run_for(8)
    app.refresh_view()


def partition(app: SimApp) -> None:
    leader = app.session.cluster.leader()
    assert leader is not None
    app.session.run_for(2_000)
    app.refresh_view()
    app.do(actions.Partition(((leader,),)))
    _run_until(app, _lost)


def scenario(app: SimApp) -> None:
    app.replace_session(Session.for_scenario(SCENARIOS["1"]), run=False)
    _run_until(app, lambda a: a.at_cue)


def nothing(app: SimApp) -> None:
    app.refresh_view()


@dataclass(frozen=True, slots=True)
class Shot:
    name: str
    title: str
    prepare: Callable[[SimApp], None]
    keys: tuple[str, ...] = ()
    size: tuple[int, int] = (100, 30)


SHOTS = (
    Shot("main", "kv tui --seed 7: a put on its way", main_screen),
    Shot("main-80x24", "kv tui at 80x24", main_screen, size=(80, 24)),
    Shot("election", "after r: a vote on the wire", election),
    Shot("partition", "the leader isolated: a message lost at the cut", partition),
    Shot("help", "? help", nothing, ("question_mark",)),
    Shot("next-event", "n: choose the next event", main_screen, ("n",)),
    Shot("inspect", "i: inspect a node", main_screen, ("i",)),
    Shot("scenario", "s 1: the leader-crash scenario at its first step", scenario),
    Shot("timelines", "acting in the past forks: f lists the timelines", nothing,
         ("comma", "comma", "comma", "k", "2", "f")),
)  # fmt: skip


async def take(shot: Shot) -> str:
    app = _app()
    async with app.run_test(size=shot.size) as pilot:
        shot.prepare(app)
        if shot.keys:
            await pilot.press(*shot.keys)
        await pilot.pause()
        return app.export_screenshot(title=shot.title)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for shot in SHOTS:
        path = OUT / f"{shot.name}.svg"
        path.write_text(asyncio.run(take(shot)))
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


if __name__ == "__main__":
    main()
