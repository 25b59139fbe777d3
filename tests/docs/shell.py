"""A reader's terminals, for the tests that run a chapter's Try it as printed.

The commands are read from the chapter's ``sh`` blocks and run with bash, in a directory of the
test's own, with the venv's ``python3`` and the real ``etcdctl`` first on the ``PATH`` and no
``ETCD*`` variable inherited. Only the chapter's ports and directories are replaced
(`Reader.adapt`): a test never binds a fixed port, and the reader's own ``kv serve`` on 2379
and 2380 must not matter. A command the chapter leaves running in a terminal of its own (``kv
serve``, ``kv cluster start``) is started in a session of its own and stopped as the reader
stops it, with Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.compat.servers import ETCDCTL_BINARY, REPO_ROOT

SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: How long a command or a started process may take before the test gives up on it.
COMMAND_TIMEOUT = 60.0
START_DEADLINE = 20.0


def sh_blocks(chapter: str, heading: str) -> list[str]:
    """The ``sh`` blocks of ``chapters/<chapter>/chapter.md`` under the line ``heading`` (``##
    Try it``), up to the next heading of the same level or a higher one."""
    lines = (REPO_ROOT / "chapters" / chapter / "chapter.md").read_text().splitlines(True)
    begin = lines.index(heading + "\n") + 1
    level = len(heading) - len(heading.lstrip("#"))
    end, fenced = len(lines), False
    for number, line in enumerate(lines[begin:], begin):
        fenced ^= line.startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", line):
            end = number
            break
    return SH_BLOCK.findall("".join(lines[begin:end]))


class Reader:
    """Runs a chapter's commands with ``replacements`` made, in ``cwd``."""

    def __init__(self, cwd: Path, replacements: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.replacements = dict(replacements)
        #: The commands left running, by name, and where their output goes.
        self.terminals: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

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

    def run(self, script: str) -> tuple[int, str]:
        """Run ``script`` (adapted) to the end: its exit status and its output."""
        done = subprocess.run(
            ["bash", "-c", self.adapt(script)],
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=self.env(),
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return done.returncode, done.stdout + done.stderr

    def start(self, name: str, command: str) -> None:
        """Run ``command`` (adapted) in a terminal of its own, called ``name``."""
        log_path = self.cwd / f"{name}.out"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                ["bash", "-c", self.adapt(command)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env(),
                start_new_session=True,
            )
        self.terminals[name] = (process, log_path)

    def output(self, name: str) -> str:
        return self.terminals[name][1].read_text(errors="replace")

    def wait_for(self, name: str, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()``, failing with ``name``'s output if it exits or takes too long."""
        process, _ = self.terminals[name]
        deadline = time.monotonic() + START_DEADLINE
        while not ready():
            assert process.poll() is None, f"{name} exited:\n{self.output(name)}"
            assert time.monotonic() < deadline, f"{name} is not ready:\n{self.output(name)}"
            time.sleep(0.1)  # polling interval only

    def wait_for_line(self, name: str, line: str) -> None:
        """Wait until ``name`` has printed ``line``."""
        self.wait_for(name, lambda: line in self.output(name))

    def is_running(self, name: str) -> bool:
        return self.terminals[name][0].poll() is None

    def exited(self, name: str, timeout: float) -> bool:
        """Did ``name`` exit by itself within ``timeout`` seconds?"""
        try:
            self.terminals[name][0].wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, name: str) -> None:
        """Ctrl-C in ``name``'s terminal, and wait for it to end."""
        process, _ = self.terminals[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        for name in self.terminals:
            self.stop(name)
