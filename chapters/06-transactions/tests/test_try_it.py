"""The chapter's Try it, run as printed with the real etcdctl, on free ports (never 26379).

The ``sh`` blocks of the Try it section are read from ``chapter.md``: the server command runs
with the chapter's ports and data directory replaced by free ones and a temporary directory,
then the etcdctl block runs with bash, and its output must say what the page says.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.compat.servers import ETCDCTL_BINARY, REPO_ROOT, free_ports

CHAPTER = Path(__file__).parents[1] / "chapter.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
START_DEADLINE = 20.0

pytestmark = pytest.mark.etcd


def try_it_blocks() -> list[str]:
    text = CHAPTER.read_text()
    return SH_BLOCK.findall(text[text.index("## Try it") : text.index("## Tests")])


def test_the_try_it_commands_print_what_the_page_says(tmp_path: Path) -> None:
    demo, serve, etcdctl = try_it_blocks()
    client, peer = free_ports(2)
    replacements = {"26379": str(client), "26380": str(peer), "/tmp/kv-chapter6": str(tmp_path)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD", "ETCDCTL"))}
    path = [str(Path(sys.executable).parent), os.path.dirname(ETCDCTL_BINARY), env["PATH"]]
    env |= {"PATH": os.pathsep.join(path), "PYTHONPATH": str(REPO_ROOT)}

    def adapt(commands: str) -> list[str]:
        for old, new in replacements.items():
            commands = commands.replace(old, new)
        return ["bash", "-c", commands]

    assert "demo.py" in demo
    server = subprocess.Popen(
        adapt(serve), cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        health = adapt(f"etcdctl --endpoints=127.0.0.1:{client} endpoint health")
        deadline = time.monotonic() + START_DEADLINE
        while subprocess.run(health, env=env, capture_output=True).returncode:
            assert server.poll() is None and time.monotonic() < deadline, "kv serve never served"
            time.sleep(0.1)  # polling interval only
        done = subprocess.run(adapt(etcdctl), env=env, capture_output=True, text=True, timeout=60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    lines = done.stdout.splitlines()
    assert lines[:8] == ["OK", "SUCCESS", "", "OK", "FAILURE", "", "config", "v2"]
    assert '"succeeded":true' in lines[8] and '"revision":4' in lines[8]
    assert "Error: etcdserver: duplicate key given in txn request" in done.stderr
