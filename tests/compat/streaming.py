"""A long-running ``etcdctl`` process (``watch``, ``lock``, ``elect``, ``lease keep-alive``) whose
printed lines a differential test reads as they come (chapters 7 and 8).

These commands run until stopped, so a test starts one per server, reads what it printed with a
deadline (never a sleep), signals it the way a user would (SIGINT: etcdctl then releases its lock,
resigns, or stops) or kills it (SIGKILL: a crash, so its session lease must expire), and compares
what the reference etcd and kv made it print.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Sequence

from tests.compat.servers import ETCDCTL_BINARY, Server

#: Seconds a test waits for one line, or for the process to exit after a signal.
TIMEOUT = 15.0


class EtcdctlProcess:
    """A running ``etcdctl --endpoints=SERVER [-w json] ARGS``; stdout is read line by line."""

    def __init__(self, server: Server, args: Sequence[str], *, json: bool = True) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
        env["ETCDCTL_API"] = "3"
        self.server = server
        self.process = subprocess.Popen(
            [ETCDCTL_BINARY, f"--endpoints={server.endpoint}", *(["-w", "json"] * json), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output: `rest` stops here

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def raw_lines(self, count: int) -> list[str]:
        """The next ``count`` printed lines, waiting up to `TIMEOUT` for each."""
        taken: list[str] = []
        for _ in range(count):
            line = self._lines.get(timeout=TIMEOUT)
            assert line is not None, f"etcdctl exited after {taken}: {self.stderr_now()}"
            taken.append(line)
        return taken

    def printed_nothing_more(self) -> bool:
        """Whether no further line has been printed so far (does not wait)."""
        return self._lines.empty()

    def interrupt(self) -> tuple[int, list[str], str]:
        """SIGINT, as Ctrl-C would: the exit code, the lines printed after, and stderr."""
        self.process.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> tuple[int, list[str], str]:
        """Wait for the process to exit: its exit code, the lines not yet read, its stderr."""
        # Not communicate(): it would read stdout too, racing the reader thread for lines.
        self.process.wait(timeout=TIMEOUT)
        assert self.process.stderr is not None
        stderr = self.process.stderr.read()
        rest: list[str] = []
        while (line := self._lines.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        return self.process.returncode, rest, stderr

    def stderr_now(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(still running)"
        return self.process.stderr.read()

    def stop(self) -> None:
        """SIGKILL and reap (a crash: etcdctl cleans nothing up)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
