"""Transcript tests for the Raft core: the interpreter that chapters 3, 4 and 5 run their
``tests/testdata/*.txt`` with.

In the style of etcd's ``interaction_test.go`` (datadriven; etcd-io/raft keeps the interpreter
in ``rafttest`` beside its test network, as `tests.raftnet` is here): a transcript is a test
and a page of documentation at once. A block is a command, a ``----`` line, and the expected
output::

    campaign 1
    ----
    n1 became candidate at term 1
    n2 became follower at term 1
    ...

The output of a command is the event stream it caused (`kv.raft.events`), or what an
inspecting command (``status``, ``log``) prints. Each chapter's ``test_transcripts.py`` runs
its own transcripts through `check_transcript`. After a change to the core, regenerate them and
read the diff::

    KV_REWRITE_TRANSCRIPTS=1 pytest chapters/*/tests/test_transcripts.py

Commands (node ids are numbers; ``xN`` repeats):

    cluster 1 2 3 [pre-vote] [check-quorum] [bootstrap] [seed=N] [election=N] [heartbeat=N]
    campaign 1 | tick 1 [xN] | tick-all [xN] | propose 1 data | read 1 context
    transfer-leader 1 2 | propose-conf-change 1 add|remove|add-learner 4
    add-member 4 | isolate 1 | cut 1 2 | heal | crash 1 | restart 1 | compact 1
    status | log 1
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from kv.raft import ConfChange, ConfChangeType, ProposalDroppedError
from tests.raftnet import Network

REWRITE = os.environ.get("KV_REWRITE_TRANSCRIPTS") == "1"

CONF_CHANGES = {
    "add": ConfChangeType.ADD_NODE,
    "remove": ConfChangeType.REMOVE_NODE,
    "add-learner": ConfChangeType.ADD_LEARNER_NODE,
}


@dataclass
class Block:
    comments: list[str]
    command: str
    expected: list[str]


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    comments: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            comments.append(line)
            i += 1
            continue
        command = line
        if i + 1 >= len(lines) or lines[i + 1] != "----":
            raise ValueError(f"line {i + 2}: expected ---- after {command!r}")
        i += 2
        expected = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        blocks.append(Block(comments, command, expected))
        comments = []
    if comments:
        blocks.append(Block(comments, "", []))
    return blocks


def render(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if out:
            out.append("")
        out.extend(block.comments)
        if block.command:
            out += [block.command, "----", *(block.expected or ["ok"])]
    return "\n".join(out) + "\n"


class Interpreter:
    def __init__(self) -> None:
        self.net: Network | None = None

    @property
    def network(self) -> Network:
        assert self.net is not None, "start with: cluster 1 2 3"
        return self.net

    def run(self, command: str) -> list[str]:
        words = command.split()
        name, args = words[0], words[1:]
        repeat = 1
        if args and args[-1].startswith("x") and args[-1][1:].isdigit():
            repeat = int(args.pop()[1:])
        if name == "cluster":
            return self.cluster(args)
        net = self.network
        start = len(net.events)
        output: list[str] = []
        nodes = [int(arg) for arg in args if arg.isdigit()]
        for _ in range(repeat):
            if name == "campaign":
                net.campaign(nodes[0])
            elif name == "tick":
                net.tick(nodes[0])
            elif name == "tick-all":
                net.tick_all()
            elif name == "propose":
                try:
                    net.propose(nodes[0], args[1].encode())
                except ProposalDroppedError as error:
                    output.append(f"error: {error}")
            elif name == "read":
                net[nodes[0]].read_index(args[1].encode())
                net.stabilize()
                output += [
                    f"n{nodes[0]} may read {ctx.decode()} once applied up to {index}"
                    for ctx, index in net.members[nodes[0]].reads
                ]
                net.members[nodes[0]].reads.clear()
            elif name == "transfer-leader":
                net[nodes[0]].transfer_leader(nodes[1])
                net.stabilize()
            elif name == "propose-conf-change":
                change = ConfChange(type=CONF_CHANGES[args[1]], node_id=int(args[2]))
                net[nodes[0]].propose_conf_change(change)
                net.stabilize()
            elif name == "add-member":
                net.add_member(nodes[0])
            elif name == "isolate":
                net.isolate(nodes[0])
            elif name == "cut":
                net.cut(nodes[0], nodes[1])
            elif name == "heal":
                net.heal()
            elif name == "crash":
                net.crash(nodes[0])
            elif name == "restart":
                net.restart(nodes[0])
            elif name == "compact":
                snapshot = net.compact(nodes[0])
                output.append(f"n{nodes[0]} compacted its log up to {snapshot.metadata.index}")
            elif name == "status":
                output += self.status()
            elif name == "log":
                output += self.log(nodes[0])
            else:
                raise ValueError(f"unknown command {name!r}")
        return net.event_lines()[start:] + output

    def cluster(self, args: list[str]) -> list[str]:
        ids = [int(arg) for arg in args if arg.isdigit()]
        options = dict(arg.split("=") for arg in args if "=" in arg)
        self.net = Network(
            ids,
            seed=int(options.get("seed", 0)),
            pre_vote="pre-vote" in args,
            check_quorum="check-quorum" in args,
            bootstrap="bootstrap" in args,
            election_tick=int(options.get("election", 10)),
            heartbeat_tick=int(options.get("heartbeat", 1)),
        )
        return []

    def status(self) -> list[str]:
        net = self.network
        lines = []
        for member in net.ids():
            if net.is_down(member):
                lines.append(f"n{member}: down")
                continue
            status = net[member].status()
            lead = f"n{status.soft_state.lead}" if status.soft_state.lead else "none"
            applied = b" ".join(net.applied(member)).decode() or "-"
            lines.append(
                f"n{member}: {status.soft_state.role} term={status.hard_state.term} "
                f"lead={lead} commit={status.hard_state.commit} applied=[{applied}]"
            )
        return lines

    def log(self, member: int) -> list[str]:
        entries = self.network[member].raft.log.all_entries()
        described = [
            f"{e.index}/{e.term}" + (f" {e.data.decode()}" if e.data else "") for e in entries
        ]
        return [f"n{member} log: " + (", ".join(described) or "empty")]


def transcripts(testdata: Path) -> list[Path]:
    """The transcripts in a chapter's ``testdata`` folder; there must be some."""
    found = sorted(testdata.glob("*.txt"))
    if not found:
        raise FileNotFoundError(f"no transcripts in {testdata}")
    return found


def check_transcript(path: Path) -> None:
    """Run one transcript; fail on the first block whose output differs (or rewrite it)."""
    blocks = parse(path.read_text(encoding="utf-8"))
    interpreter = Interpreter()
    mismatches = []
    for block in blocks:
        if not block.command:
            continue
        actual = interpreter.run(block.command) or ["ok"]
        if actual != (block.expected or ["ok"]):
            mismatches.append((block.command, block.expected, actual))
        block.expected = actual
    if REWRITE:
        path.write_text(render(blocks), encoding="utf-8")
        return
    if mismatches:
        command, expected, actual = mismatches[0]
        pytest.fail(
            f"{path.name}: {len(mismatches)} block(s) differ; first: {command!r}\n"
            f"expected:\n  "
            + "\n  ".join(expected)
            + "\nactual:\n  "
            + "\n  ".join(actual)
            + "\n(regenerate with KV_REWRITE_TRANSCRIPTS=1 and review the diff)"
        )
