"""The ``kv`` command as a user runs it: real processes, real ports, real signals.

Each test starts ``python -m kv`` (the same `kv.cli.main` as the ``kv`` console script) with
the repository on ``PYTHONPATH``. Readiness is decided by the server answering a request,
polled with a deadline; nothing sleeps for correctness.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from kv import __version__
from kv.client import KVClient
from kv.server.errors import EtcdError

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
KV = [sys.executable, "-m", "kv"]
#: Generous deadlines: a loaded CI machine is slow, a hung server is still caught.
START_DEADLINE = 20.0
STOP_DEADLINE = 5.0


def kv_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a kv process: ours, minus ETCD_* variables, plus the checkout."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ETCD_")}
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPOSITORY_ROOT), env.get("PYTHONPATH", "")) if part
    )
    env.update(extra or {})
    return env


def run_kv(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``kv ARGS`` to completion (for commands that exit by themselves)."""
    return subprocess.run(
        [*KV, *args], capture_output=True, text=True, env=kv_env(env), timeout=START_DEADLINE
    )


@dataclass
class KvProcess:
    """A running ``kv serve``; its stderr (the log) goes to a file, read when it is done."""

    process: subprocess.Popen[bytes]
    endpoint: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self) -> None:
        """Poll Status until the server answers; fail with its log if it exits or never does."""
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"kv exited with {self.process.returncode}:\n{self.log()}")
            # A new channel per attempt: a channel that failed to connect backs off for about
            # a second before it tries again, which would make every start look slow.
            async with KVClient(self.endpoint, timeout=0.5) as client:
                try:
                    await client.status()
                    return
                except EtcdError:
                    pass
            await asyncio.sleep(0.02)  # polling interval, not a wait for correctness
        pytest.fail(f"kv did not answer within {START_DEADLINE}s:\n{self.log()}")

    def stop(self, signum: signal.Signals) -> int:
        """Send ``signum``; return the exit code (fails if kv takes longer than the deadline)."""
        self.process.send_signal(signum)
        return self.process.wait(STOP_DEADLINE)


@pytest.fixture
def start_kv(
    tmp_path: Path, free_ports: Callable[[int], list[int]]
) -> Iterator[Callable[..., KvProcess]]:
    """``start_kv(*flags, env=...)`` launches ``kv serve`` on free ports; killed at the end.

    Both of its ports are free ones: the client port, and the peer port that a member listens
    on even alone (etcd's default, 2380, may be held by a ``kv serve`` or an etcd the reader
    left running). The member's name, for ``--initial-cluster``, is ``ETCD_NAME`` if ``env``
    sets it, as in etcd.
    """
    started: list[KvProcess] = []

    def start(*flags: str, env: Mapping[str, str] | None = None) -> KvProcess:
        port, peer_port = free_ports(2)
        url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}"
        name = (env or {}).get("ETCD_NAME", "default")
        log_path = tmp_path / f"kv-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *KV,
                    "serve",
                    f"--listen-client-urls={url}",
                    f"--advertise-client-urls={url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster={name}={peer_url}",
                    *flags,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=tmp_path,
                env=kv_env(env),
            )
        started.append(KvProcess(process, f"127.0.0.1:{port}", log_path))
        return started[-1]

    yield start
    for kv in started:
        if kv.process.poll() is None:
            kv.process.kill()
            kv.process.wait()


# --- commands that exit by themselves ----------------------------------------------------------


def test_version_names_kv_and_the_etcd_api() -> None:
    result = run_kv("--version")
    assert (result.returncode, result.stdout) == (0, f"kv {__version__} (etcd API 3.4)\n")


#: The ``kv`` console script: beside this Python (a virtual environment's bin/, which need not
#: be on PATH: the README runs ``.venv/bin/python -m pytest``), or else on PATH.
KV_SCRIPT = shutil.which(
    "kv", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)


@pytest.mark.skipif(KV_SCRIPT is None, reason="kv is not installed (pip install -e .)")
def test_the_kv_console_script_runs_the_same_main() -> None:
    assert KV_SCRIPT is not None
    result = subprocess.run([KV_SCRIPT, "--version"], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, f"kv {__version__} (etcd API 3.4)\n")


def test_no_subcommand_prints_help() -> None:
    result = run_kv()
    assert result.returncode == 0
    assert "serve" in result.stdout


def test_an_unknown_flag_exits_2_naming_the_flag() -> None:
    result = run_kv("serve", "--bogus-flag=1")
    assert result.returncode == 2
    assert "--bogus-flag" in result.stderr


def test_an_abbreviated_flag_is_unknown_as_in_etcd() -> None:
    result = run_kv("serve", "--na", "x")
    assert result.returncode == 2
    assert "--na" in result.stderr


def test_a_refused_configuration_exits_1_with_etcds_message() -> None:
    result = run_kv("serve", "--election-timeout=100")
    assert result.returncode == 1
    assert (
        "--election-timeout[100ms] should be at least as 5 times as --heartbeat-interval[100ms]"
        in result.stderr
    )


# --- kv serve ----------------------------------------------------------------------------------


async def test_serve_answers_a_put_and_a_get(start_kv: Callable[..., KvProcess]) -> None:
    kv = start_kv()
    await kv.wait_ready()
    async with KVClient(kv.endpoint) as client:
        await client.put("a", "1")
        answer = await client.get("a")
    assert answer is not None and answer.value == b"1"


async def test_serve_logs_that_it_is_ready(start_kv: Callable[..., KvProcess]) -> None:
    kv = start_kv()
    await kv.wait_ready()
    kv.stop(signal.SIGTERM)
    assert "ready to serve client requests" in kv.log()
    assert f"address={kv.endpoint}" in kv.log()


#: Runs ``kv serve`` with `kv.server.app.serve` replaced by one that prints which event loop
#: runs it, and returns at once.
_PRINT_THE_LOOP = """
import asyncio, sys
import kv.server.app

async def serve(config):
    print(type(asyncio.get_running_loop()).__module__)

kv.server.app.serve = serve
from kv.cli import main
raise SystemExit(main(["serve", "--data-dir", sys.argv[1]]))
"""


def test_serve_runs_the_server_on_uvloop(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PRINT_THE_LOOP, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=kv_env(),
        timeout=START_DEADLINE,
    )
    assert (result.returncode, result.stdout) == (0, "uvloop\n"), result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_a_stop_signal_ends_serve_with_exit_code_0(
    start_kv: Callable[..., KvProcess], signum: signal.Signals
) -> None:
    kv = start_kv()
    await kv.wait_ready()
    assert kv.stop(signum) == 0
    assert f"received signal, shutting down ({signum.name})" in kv.log()


async def test_a_clean_stop_logs_its_last_line_before_the_process_ends(
    start_kv: Callable[..., KvProcess],
) -> None:
    # kv serve ends its process without the interpreter's teardown (issue 12): whatever it
    # logged must still have been written out.
    kv = start_kv()
    await kv.wait_ready()
    assert kv.stop(signal.SIGTERM) == 0
    assert kv.log().rstrip().endswith("stopped serving client requests")


async def test_a_port_in_use_exits_non_zero_naming_the_url(
    start_kv: Callable[..., KvProcess],
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        url = f"http://127.0.0.1:{squatter.getsockname()[1]}"
        kv = start_kv(f"--listen-client-urls={url}", f"--advertise-client-urls={url}")
        returncode = kv.process.wait(START_DEADLINE)
    assert returncode != 0
    assert f"cannot listen on {url}" in kv.log()
    assert "address already in use" in kv.log()


async def test_an_etcd_environment_variable_sets_the_member_name(
    start_kv: Callable[..., KvProcess],
) -> None:
    kv = start_kv(env={"ETCD_NAME": "from-env"})
    await kv.wait_ready()
    async with KVClient(kv.endpoint) as client:
        members = await client.member_list()
    assert [member.name for member in members.members] == ["from-env"]
