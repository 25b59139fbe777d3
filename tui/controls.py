"""Every key of ``kv tui``, grouped, and what the keys that need a choice first ask (the TUI).

One table (`CONTROLS`) is the source of the app's bindings, the footer, the help screen and
the command palette, so the four never disagree. Keys are RaftScope's where it has one
(space, ``c``, ``r``, ``t``, ``a``); a key marked "..." opens a small picker where a node's
number picks that node.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from textual.binding import Binding, BindingType

from kv.raft import Role
from tui.screens.choice import Choice, ChoiceScreen
from tui.session import actions

if TYPE_CHECKING:
    from tui.app import SimApp

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Control:
    key: str  # Textual's key name(s)
    shown: str  # how the help screen writes the key
    action: str  # the app action it runs
    description: str  # the footer's and the palette's name for it
    group: str
    help: str
    footer: bool = False


def _picker(name: str) -> str:
    return f"controls('{name}')"


CONTROLS = (
    Control(
        "space", "space", "toggle_pause", "pause/resume", "Run", "Pause or resume the run.", True
    ),
    Control("full_stop", ".", "step", "step", "Run", "One event forward (pauses).", True),
    Control(
        "comma", ",", "step_back", "back", "Run", "One event back (pauses): time travel.", True
    ),
    Control(
        "plus,equals_sign",
        "+",
        "speed(1)",
        "faster",
        "Run",
        "Run faster (up to max): the speed while something is under way.",
    ),
    Control("minus", "-", "speed(-1)", "slower", "Run", "Run slower (down to x0.01)."),
    Control(
        "F",
        "F",
        "fast_forward",
        "fast-forward on/off",
        "Run",
        "Skip fast through quiet stretches (only timers and heartbeats pending), or not.",
    ),
    Control(
        "N",
        "N",
        _picker("new_seed"),
        "new run from a seed…",
        "Run",
        "Start again on a new cluster from a seed you choose (the same nodes and settings).",
    ),
    Control("c", "c", _picker("put"), "client put", "Clients", "A client puts a key.", True),
    Control(
        "r",
        "r",
        _picker("restart_leader"),
        "restart leader",
        "Failures",
        "Crash the leader; it restarts from its disk half a second later.",
        True,
    ),
    Control("k", "k", _picker("crash"), "crash…", "Failures", "Crash a node.", True),
    Control("R", "R", _picker("restart"), "restart…", "Failures", "Restart a crashed node."),
    Control("p", "p", _picker("partition"), "partition…", "Network", "Partition the nodes.", True),
    Control("o", "o", _picker("cut"), "one-way cut…", "Network", "Cut one link, one way."),
    Control("h", "h", _picker("heal"), "heal", "Network", "Heal every link.", True),
    Control(
        "l", "l", _picker("link"), "link loss/delay…", "Network", "Make one link lossy or slow."
    ),
    Control(
        "t",
        "t",
        _picker("spread"),
        "spread timers",
        "Timers",
        "Spread the election timers: one times out first.",
    ),
    Control(
        "a",
        "a",
        _picker("align"),
        "align timers",
        "Timers",
        "Align the election timers: split votes.",
    ),
    Control(
        "x", "x", _picker("transfer"), "transfer leader…", "Cluster", "Hand leadership to a node."
    ),
    Control(
        "m", "m", _picker("membership"), "membership…", "Cluster", "Add a learner, promote, remove."
    ),
    Control(
        "s", "s", _picker("scenarios"), "scenarios", "Learn", "Pick a narrated scenario.", True
    ),
    Control(
        "n", "n", _picker("next_event"), "next event", "Learn", "Choose the next event by hand."
    ),
    Control(
        "i",
        "i",
        _picker("inspect"),
        "inspect",
        "Learn",
        "A node's Raft state, messages, the last change.",
    ),
    Control(
        "f", "f", _picker("timelines"), "timelines", "Time", "The timelines (forks) of this run."
    ),
    Control(
        "w",
        "w",
        _picker("save"),
        "save trace",
        "Time",
        "Save the run (seed and actions) to a file.",
    ),
    Control("question_mark", "?", _picker("help"), "help", "App", "Every key, grouped.", True),
    Control("q", "q", "quit", "quit", "App", "Quit.", True),
)

BINDINGS: list[BindingType] = [
    *(
        Binding(c.key, c.action, c.description, show=c.footer, key_display=c.shown)
        for c in CONTROLS
    ),
    *(Binding(str(n), f"select({n})", f"select n{n}", show=False) for n in range(1, 8)),
]


def help_of(binding: Binding) -> str:
    """The help line of a binding (for the command palette)."""
    found = [c for c in CONTROLS if c.action == binding.action]
    return f"[{found[0].shown}] {found[0].help}" if found else ""


# -- what the "..." keys ask ------------------------------------------------------------------


def _ask(app: SimApp, title: str, choices: list[Choice[T]], then: Callable[[T], None]) -> None:
    if not choices:
        app.notify(f"{title}: nothing to choose from", severity="warning")
        return

    def chosen(value: T | None) -> None:
        if value is not None:
            then(value)

    app.push_screen(ChoiceScreen(title, choices), chosen)


def _nodes(app: SimApp, which: Callable[[int], bool]) -> list[Choice[int]]:
    cluster = app.session.cluster
    return [
        Choice(f"n{n} ({cluster.nodes[n].role or 'down'})", n, str(n))
        for n in sorted(cluster.nodes)
        if which(n)
    ]


def _up(app: SimApp) -> Callable[[int], bool]:
    return lambda n: app.session.cluster.nodes[n].up


def _partitions(app: SimApp) -> list[Choice[tuple[tuple[int, ...], ...]]]:
    ids = list(app.session.cluster.ids)
    choices: list[Choice[tuple[tuple[int, ...], ...]]] = [
        Choice(f"isolate n{n}", ((n,),), str(n)) for n in ids
    ]
    leader = app.session.cluster.leader()
    if leader is not None and len(ids) > 2:
        rest = tuple(n for n in ids if n != leader)
        minority = (leader, rest[0])
        choices.append(Choice(f"leader n{leader} with n{rest[0]} (a minority?)", (minority,), "L"))
    if len(ids) >= 4:
        half = tuple(ids[: len(ids) // 2])
        choices.append(Choice(f"split {half} | the rest", (half,), "S"))
    return choices


LINK_PRESETS = (
    ("lose 30% of messages", 0.3, 0),
    ("lose every message", 1.0, 0),
    ("100 ms slower", 0.0, 100),
    ("500 ms slower", 0.0, 500),
    ("lose 30% and 200 ms slower", 0.3, 200),
    ("back to normal", 0.0, 0),
)


def run(app: SimApp, name: str) -> None:
    """Run control ``name`` (a `Control.action` of the form ``controls('name')``)."""
    do, cluster = app.do, app.session.cluster
    if name == "put":
        app.puts += 1
        do(actions.ClientPut(f"k{(app.puts - 1) % 5}", f"v{app.puts}"))
    elif name == "restart_leader":
        if cluster.leader() is None:
            app.notify("no leader right now: nothing to restart", severity="warning")
        do(actions.RestartLeader())
    elif name == "crash":
        _ask(app, "Crash which node?", _nodes(app, _up(app)), lambda n: do(actions.Crash(n)))
    elif name == "restart":
        down = _nodes(app, lambda n: not cluster.nodes[n].up)
        _ask(app, "Restart which node?", down, lambda n: do(actions.Restart(n)))
    elif name == "partition":
        _ask(app, "Partition", _partitions(app), lambda g: do(actions.Partition.of(*g)))
    elif name == "cut":
        _two_nodes(app, "Cut", lambda a, b: do(actions.Cut.of([a], [b])))
    elif name == "heal":
        do(actions.Heal())
    elif name == "link":
        _two_nodes(app, "Link", lambda a, b: _link(app, a, b))
    elif name == "spread":
        do(actions.SpreadTimers())
    elif name == "align":
        do(actions.AlignTimers())
    elif name == "transfer":
        targets = _nodes(
            app, lambda n: cluster.nodes[n].up and cluster.nodes[n].role is not Role.LEADER
        )
        _ask(app, "Transfer leadership to?", targets, lambda n: do(actions.TransferLeader(n)))
    elif name == "membership":
        _membership(app)
    elif name == "new_seed":
        _ask_seed(app)
    else:
        from tui.screens import open_screen

        open_screen(app, name)


def _ask_seed(app: SimApp) -> None:
    from tui.screens.ask import AskScreen

    def start(text: str | None) -> None:
        if text is None:
            return
        try:
            seed = int(text)
        except ValueError:
            app.notify(f"a seed is a whole number, not {text!r}", severity="warning")
            return
        app.new_run(seed)

    suggestion = str(random.SystemRandom().randrange(1000))
    app.push_screen(AskScreen("Start a new run from seed (enter starts):", suggestion), start)


def _two_nodes(app: SimApp, what: str, then: Callable[[int, int], None]) -> None:
    everyone = _nodes(app, lambda n: True)

    def first(a: int) -> None:
        others = [c for c in everyone if c.value != a]
        _ask(app, f"{what} n{a} -> which node?", others, lambda b: then(a, b))

    _ask(app, f"{what}: from which node?", everyone, first)


def _link(app: SimApp, a: int, b: int) -> None:
    choices = [
        Choice(label, (loss, delay), str(i + 1))
        for i, (label, loss, delay) in enumerate(LINK_PRESETS)
    ]
    _ask(
        app,
        f"Link n{a} -> n{b}",
        choices,
        lambda preset: app.do(actions.LinkFaults(a, b, preset[0], preset[1])),
    )


def _membership(app: SimApp) -> None:
    cluster = app.session.cluster
    choices: list[Choice[actions.Action]] = [Choice("add a learner", actions.AddLearner(), "a")]
    learners = set()
    leader = cluster.leader()
    if leader is not None:
        status = cluster.nodes[leader].status()
        if status is not None:
            learners = set(status.conf_state.learners)
    choices += [
        Choice(f"promote learner n{n}", actions.PromoteLearner(n), "p") for n in sorted(learners)
    ]
    choices += [
        Choice(f"remove n{n}", actions.RemoveMember(n), str(n))
        for n in cluster.ids
        if n not in learners
    ]
    _ask(app, "Membership", choices, app.do)
