"""Saving and loading a session: a trace is (seed, nodes, configuration, timelines' actions).

A trace is JSON a person can read and share (``kv tui --load run.json``)::

    {"trace": 1, "seed": 7, "nodes": 3, "config": {"pre_vote": false},
     "timelines": [{"parent": null, "forked_at": 0, "length": 412,
                    "actions": [{"position": 210, "time_ms": 2000,
                                 "action": {"type": "Crash", "node": 2}}]}],
     "current": 0, "position": 412}

Only the configuration fields that differ from `kv.sim.SimConfig`'s defaults are written.
Loading replays the current timeline (the run is a pure function of the trace), so what the
person saw comes back event for event; the others are replayed when first switched to.

A failing `kv.sim` seed opens too: a trace of just ``{"seed": 7, "nodes": 3}``, or the line
`kv.sim.Cluster.describe` prints in a failure message (``seed=7 size=3 config=(pre_vote=False)
scenario: no faults``) -- configurations of plain values, no scheduled faults.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from kv.sim import SimConfig
from tui.session.actions import from_json, to_json
from tui.session.plain import from_fields, to_plain
from tui.session.timeline import Recorded, Timeline

VERSION = 1


def config_to_json(config: SimConfig) -> dict[str, Any]:
    """The fields that differ from the defaults, as JSON values."""
    default = SimConfig()
    return {
        field.name: to_plain(getattr(config, field.name))
        for field in dataclasses.fields(config)
        if getattr(config, field.name) != getattr(default, field.name)
    }


def config_from_json(data: dict[str, Any]) -> SimConfig:
    """The configuration `config_to_json` wrote.

    Raises:
        ValueError: an unknown field or a bad value.
    """
    return from_fields(SimConfig, data)


def timeline_to_json(timeline: Timeline) -> dict[str, Any]:
    return {
        "parent": timeline.parent,
        "forked_at": timeline.forked_at,
        "length": timeline.length,
        "actions": [
            {"position": r.position, "time_ms": r.time_ms, "action": to_json(r.action)}
            for r in timeline.recorded()
        ],
    }


def timeline_from_json(data: dict[str, Any]) -> tuple[Timeline, int]:
    """A timeline with its actions (caches empty), and the length to replay it to."""
    actions = {
        int(item["position"]): Recorded(
            int(item["position"]), int(item["time_ms"]), from_json(item["action"])
        )
        for item in data.get("actions", [])
    }
    parent = data.get("parent")
    timeline = Timeline(
        actions=actions,
        parent=int(parent) if parent is not None else None,
        forked_at=int(data.get("forked_at", 0)),
    )
    return timeline, int(data.get("length", max(actions, default=0)))


_DESCRIBE = re.compile(r"seed=(-?\d+) size=(\d+)(?: config=\((.*)\))? scenario: (.*)$")


def parse_describe(line: str) -> dict[str, Any]:
    """A trace (without actions) from `kv.sim.Cluster.describe`'s line.

    Raises:
        ValueError: not such a line, a configuration value that is not a plain literal, or
            a scenario with faults (not supported: replay those with ``python -m kv.sim``).
    """
    match = _DESCRIBE.search(line.strip())
    if match is None:
        raise ValueError(f"not a kv.sim description (seed=N size=N ...): {line!r}")
    seed, size, config, scenario = match.groups()
    if scenario.strip() != "no faults":
        raise ValueError(f"scheduled faults cannot be loaded yet: {scenario}")
    values: dict[str, Any] = {}
    for part in re.split(r", (?=\w+=)", config or ""):
        if not part:
            continue
        key, _, value = part.partition("=")
        try:
            values[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"cannot read {key}={value} from the description") from None
    return {"seed": int(seed), "nodes": int(size), "config": values}


def read(path: str | Path) -> dict[str, Any]:
    """A trace file: JSON, or a one-line description from `kv.sim.Cluster.describe`."""
    text = Path(path).read_text()
    if text.lstrip().startswith("{"):
        data: dict[str, Any] = json.loads(text)
        return data
    return parse_describe(text)
