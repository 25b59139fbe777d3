"""Chapter 1's Try it, run as printed with the real etcdctl: the revisions it claims, and what
a restart keeps.

The commands are read from ``chapters/01-kv-store/chapter.md`` and run with bash; only the
chapter's ports and data directory are replaced, by free ports and a temporary directory (a
test never binds a fixed port).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.compat.servers import ETCDCTL_BINARY, REPO_ROOT

CHAPTER = REPO_ROOT / "chapters" / "01-kv-store" / "chapter.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
START_DEADLINE = 20.0

pytestmark = pytest.mark.etcd


def try_it_blocks() -> list[str]:
    """The ``sh`` blocks of the chapter's Try it: the demo, the server, etcdctl."""
    text = CHAPTER.read_text()
    section = text[text.index("## Try it") : text.index("## Tests")]
    return SH_BLOCK.findall(section)


class TryIt:
    """The chapter's commands with free ports and a data directory under ``tmp_path``."""

    def __init__(self, tmp_path: Path, ports: list[int]) -> None:
        self.tmp_path = tmp_path
        self.replacements = {
            "22379": str(ports[0]),
            "22380": str(ports[1]),
            "/tmp/kv-chapter1": str(tmp_path / "kv-chapter1"),
        }
        self.server: subprocess.Popen[bytes] | None = None
        self.log_path = tmp_path / "kv.log"

    def adapt(self, commands: str) -> str:
        for old, new in self.replacements.items():
            commands = commands.replace(old, new)
        return commands

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD", "ETCDCTL"))}
        bin_dir = str(Path(sys.executable).parent)  # python3 is the venv's, as for a reader
        env["PATH"] = os.pathsep.join([bin_dir, os.path.dirname(ETCDCTL_BINARY), env["PATH"]])
        env["PYTHONPATH"] = str(REPO_ROOT)
        return env

    def serve(self, command: str) -> None:
        with self.log_path.open("ab") as log:
            self.server = subprocess.Popen(
                ["bash", "-c", self.adapt(command)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
                env=self.env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + START_DEADLINE
        while self.run("export ETCDCTL_ENDPOINTS=127.0.0.1:22379\netcdctl endpoint health")[0]:
            assert self.server.poll() is None, f"kv serve exited:\n{self.log_path.read_text()}"
            assert time.monotonic() < deadline, f"kv never served:\n{self.log_path.read_text()}"
            time.sleep(0.1)  # polling interval only

    def run(self, script: str) -> tuple[int, str]:
        done = subprocess.run(
            ["bash", "-c", self.adapt(script)],
            capture_output=True,
            text=True,
            cwd=self.tmp_path,
            env=self.env(),
            timeout=60,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGINT)  # Ctrl-C in the reader's terminal
            self.server.wait(10)


@pytest.fixture
def try_it(tmp_path: Path, free_ports: Callable[[int], list[int]]) -> Iterator[TryIt]:
    session = TryIt(tmp_path, free_ports(2))
    yield session
    session.stop()


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
    _, serve, commands = try_it_blocks()
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

    try_it.stop()
    try_it.serve(serve.removeprefix("rm -rf /tmp/kv-chapter1 && "))
    code, output = try_it.run(
        "export ETCDCTL_ENDPOINTS=127.0.0.1:22379\n"
        "etcdctl get color -w json\netcdctl get color --rev 4"
    )
    (after,) = json_answers(output)
    assert after["header"]["revision"] == 7  # type: ignore[index]
    assert after["kvs"][0]["value"] == "Ymx1ZQ=="  # type: ignore[index]  # blue
    assert "required revision has been compacted" in output
