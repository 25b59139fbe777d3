"""Run the real ``etcdctl`` (API v3, ``-w json``) against one endpoint."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from typing import Any, NamedTuple

from tests.compat.servers import ETCDCTL_BINARY


class EtcdctlResult(NamedTuple):
    """What one etcdctl invocation produced.

    `output` is the parsed JSON when stdout is JSON, else the raw stdout (some commands, such as
    ``compaction``, print plain text even with ``-w json``). `stderr` is raw: the Go client's
    ``{"level":"warn",...}`` log lines are still in it; the normaliser drops them.
    """

    exit_code: int
    output: Any
    stderr: str


def etcdctl(
    endpoint: str, args: Sequence[str], *, timeout: float = 20.0, stdin: str | None = None
) -> EtcdctlResult:
    """Run ``etcdctl --endpoints=ENDPOINT -w json ARGS...`` with ETCDCTL_API=3.

    Other ``ETCDCTL_*`` variables of the caller's environment are removed so they cannot change
    what is sent. `timeout` bounds the whole process (etcdctl's own command timeout is 5 s).
    ``stdin`` is the text etcdctl reads (``etcdctl txn`` reads its request there); none by
    default.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    completed = subprocess.run(
        [ETCDCTL_BINARY, f"--endpoints={endpoint}", "-w", "json", *args],
        input=None if stdin is None else stdin.encode(),
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    stdout = completed.stdout.decode(errors="replace")
    output: Any
    try:
        output = json.loads(stdout)
    except json.JSONDecodeError:
        output = stdout
    return EtcdctlResult(completed.returncode, output, completed.stderr.decode(errors="replace"))
