"""Chapters 1 and 2's Try its, run as printed with the real etcdctl: the revisions chapter 1
claims and what a restart keeps; chapter 2's write that survives a SIGKILL, its snapshot, and a
terminal left without the variables it set.

The commands are read from the chapters' ``chapter.md`` and run with bash
(`tests.docs.shell`); only the chapters' ports and files are replaced, by free ports and a
temporary directory (a test never binds a fixed port).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.docs.shell import Reader, sh_blocks

pytestmark = pytest.mark.etcd

HEALTH = "export ETCDCTL_ENDPOINTS=127.0.0.1:22379\netcdctl endpoint health"


class TryIt(Reader):
    """The chapter's commands with free ports and a data directory under ``tmp_path``."""

    def __init__(self, tmp_path: Path, ports: list[int]) -> None:
        super().__init__(
            tmp_path,
            {
                "22379": str(ports[0]),
                "22380": str(ports[1]),
                "/tmp/kv-chapter1": str(tmp_path / "kv-chapter1"),
            },
        )

    def serve(self, command: str) -> None:
        self.start("kv serve", command)
        self.wait_for("kv serve", lambda: self.run(HEALTH)[0] == 0)


@pytest.fixture
def try_it(tmp_path: Path, free_ports: Callable[[int], list[int]]) -> Iterator[TryIt]:
    session = TryIt(tmp_path, free_ports(2))
    yield session
    session.stop_all()


def json_answers(output: str) -> list[dict[str, object]]:
    """etcdctl's ``-w json`` answers among the output (its warning lines are JSON too)."""
    answers = []
    for line in output.splitlines():
        if line.startswith('{"header"'):
            answers.append(json.loads(line))
    return answers


def test_chapter_one_try_it_gives_the_revisions_it_claims_and_a_restart_keeps_them(
    try_it: TryIt,
) -> None:
    _, serve, commands = sh_blocks("01-kv-store", "## Try it")
    try_it.serve(serve)
    code, output = try_it.run(commands)
    assert code == 0, output  # the last command (member list) succeeded
    first, second = json_answers(output)[:2]
    assert first["kvs"] == [
        {
            "key": "Y29sb3I=",  # color
            "create_revision": 2,
            "mod_revision": 3,
            "version": 2,
            "value": "Z3JlZW4=",  # green
        }
    ]
    assert second["kvs"][0]["create_revision"] == 7  # type: ignore[index]
    assert "Error: etcdserver: mvcc: required revision has been compacted" in output

    try_it.stop("kv serve")
    try_it.serve(serve.removeprefix("rm -rf /tmp/kv-chapter1 && "))
    code, output = try_it.run(
        "export ETCDCTL_ENDPOINTS=127.0.0.1:22379\n"
        "etcdctl get color -w json\netcdctl get color --rev 4"
    )
    (after,) = json_answers(output)
    assert after["header"]["revision"] == 7  # type: ignore[index]
    assert after["kvs"][0]["value"] == "Ymx1ZQ=="  # type: ignore[index]  # blue
    assert "required revision has been compacted" in output


def test_chapter_two_try_it_keeps_a_write_through_sigkill_and_leaves_no_variables_behind(
    tmp_path: Path, free_ports: Callable[[int], list[int]]
) -> None:
    _, block = sh_blocks("02-durability", "## Try it")
    client, peer = free_ports(2)
    reader = Reader(
        tmp_path,
        {
            "22379": str(client),
            "22380": str(peer),
            "/tmp/kv-chapter2": str(tmp_path / "kv-chapter2"),
            "/tmp/backup.db": str(tmp_path / "backup.db"),
        },
    )
    # The reader waits for "ready to serve client requests" after each start; so does this.
    ready = (
        "until etcdctl endpoint health >/dev/null 2>&1; do kill -0 $! || exit 1; sleep 0.1; done"
    )
    lines = [
        f"{line}\n{ready}" if line.startswith("python3 -m kv serve") else line
        for line in block.splitlines()
    ]
    assert sum(line.startswith("python3 -m kv serve") for line in lines) == 2
    left = "echo \"left: $(env | grep -cE '^(ETCD_|ETCDCTL_ENDPOINTS=)')\""
    code, output = reader.run("\n".join([*lines, left]))
    assert code == 0, output
    assert "greeting\nhello\n" in output, output  # the put survived the SIGKILL
    assert "Snapshot saved at" in output, output
    # The snapshot's revision, in the same table from kv and from the real etcdctl: it is
    # etcd's own file format. (etcdctl prints the hash as %x, without leading zeros.)
    rows = re.findall(r"^\|\s+[0-9a-f]{1,8} \|\s+2 \|.*$", output, re.MULTILINE)
    assert len(rows) == 2 and rows[0] == rows[1], output
    assert "restored snapshot" in output, output  # etcdctl snapshot restore logs it
    assert "left: 0" in output, output  # the last lines unset the variables that set ports
