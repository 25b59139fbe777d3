"""Helpers for the ``etcdctl lock`` / ``elect`` / ``lease keep-alive`` differential tests
(chapters 7 and 8): a transcript of what the etcdctl processes printed, normalised.

``etcdctl lock NAME`` and ``etcdctl elect NAME`` are etcd's client-side concurrency recipes: a
session lease kept alive, a key ``NAME/<lease ID in hex>`` put with it, a wait for every older
key of the prefix to be deleted. What differs between two correct servers is the session leases'
IDs (the server picks them; the member ID and the start time are in them). Everything else --
revisions, create revisions, versions, the order of events -- is compared as printed: nothing in
the recipes makes it vary. So, besides `tests.compat.normalise` (headers' member and cluster IDs
and raft term), a transcript is normalised in exactly one way: each session's lease ID becomes
``<lease-1>``, ``<lease-2>``, ... in the order the sessions' keys first appear in the transcript
(in a key in hex, as ``lease`` in decimal). The numbering keeps the roles apart: a server that
printed the first session's key where etcd printed the second's shows ``<lease-1>`` for
``<lease-2>``. Keys and values in JSON are shown decoded, so that the hex in a key can be masked.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from tests.compat.etcdctl import etcdctl
from tests.compat.leases import mask
from tests.compat.normalise import normalise_stderr, normalise_value
from tests.compat.servers import Server
from tests.compat.streaming import EtcdctlProcess


def _decoded(value: Any) -> Any:
    """``key`` and ``value`` fields (base64 in etcdctl's JSON) as text."""
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).decode()
            if k in {"key", "value"} and isinstance(v, str)
            else _decoded(v)
            for k, v in value.items()
        }
    return value


def _parsed(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return line


class Transcript:
    """What a scenario's etcdctl processes printed, in order, each entry labelled."""

    def __init__(self, name: str) -> None:
        self.name = name  # the lock or election name: session keys are NAME/<hex lease ID>
        self.entries: list[tuple[str, Any]] = []

    def lines(self, label: str, process: EtcdctlProcess, count: int) -> list[Any]:
        """Read ``count`` lines of ``process`` into the transcript; returns them parsed."""
        printed = [
            _decoded(normalise_value(_parsed(line), process.server))
            for line in process.raw_lines(count)
        ]
        self.entries.append((label, printed))
        return printed

    def note(self, label: str, value: Any) -> None:
        self.entries.append((label, value))

    def exited(self, label: str, process: EtcdctlProcess, *, interrupt: bool = True) -> None:
        """Interrupt (or wait for) ``process``; record its exit code, last lines and stderr."""
        code, rest, stderr = process.interrupt() if interrupt else process.finish()
        printed = [_decoded(normalise_value(_parsed(line), process.server)) for line in rest]
        self.entries.append((label, [code, printed, normalise_stderr(stderr, process.server)]))

    def get(self, label: str, server: Server, *args: str) -> None:
        """Record ``etcdctl -w json get ARGS`` on ``server``."""
        result = etcdctl(server.endpoint, ["get", *args])
        output = _decoded(normalise_value(result.output, server))
        self.entries.append((label, [result.exit_code, output]))

    def normalised(self) -> list[tuple[str, Any]]:
        """The entries with each session's lease ID numbered by first appearance."""
        text = json.dumps(self.entries)
        pattern = re.compile(rf"{re.escape(self.name)}/([0-9a-f]{{1,16}})\b")
        labels: dict[int, str] = {}
        for found in pattern.finditer(text):
            labels.setdefault(int(found[1], 16), f"<lease-{len(labels) + 1}>")
        return [(label, mask(value, labels)) for label, value in self.entries]


def wait_for_keys(server: Server, prefix: str, count: int, timeout: float = 15.0) -> None:
    """Poll until ``prefix`` holds ``count`` keys: a session has put its key and now waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = etcdctl(server.endpoint, ["get", prefix, "--prefix", "--keys-only"])
        if result.exit_code == 0 and len(result.output.get("kvs", [])) == count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{prefix} never held {count} keys on {server.kind}")
