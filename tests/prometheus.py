"""A real Prometheus scraping a test cluster, and the parts of its HTTP API the tests read
(chapter 10).

`Prometheus` runs Debian's ``prometheus`` (``apt-get install prometheus``) on a free loopback
port with a configuration written for the test: one scrape job over the members' metrics
URLs, scraped and its rules evaluated every second (Prometheus' defaults are one minute), so
that a test sees a change within a few seconds. It is stopped, and its data removed with the
test's temporary directory, at the end. Nothing here sleeps for correctness: `wait_until`
polls the API with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.compat.servers import free_ports

T = TypeVar("T")

PROMETHEUS = shutil.which("prometheus")
INSTALL_HINT = "apt-get install -y prometheus"
#: How often Prometheus scrapes and evaluates its rules, in the tests.
INTERVAL = "1s"


@dataclass(slots=True)
class Prometheus:
    """One Prometheus scraping ``targets`` (``host:port`` serving ``/metrics``) as ``job``."""

    workdir: Path
    targets: Sequence[str]
    rules: Path
    job: str = "etcd"
    port: int = field(default_factory=lambda: free_ports(1)[0])
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, start Prometheus, and wait until it is ready."""
        assert PROMETHEUS is not None, INSTALL_HINT
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(self.configuration())
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_until(self._ready, "Prometheus ready", timeout)

    def configuration(self) -> str:
        """prometheus.yml: JSON is YAML, and needs no YAML library here."""
        return json.dumps(
            {
                "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
                "rule_files": [str(self.rules)],
                "scrape_configs": [
                    {"job_name": self.job, "static_configs": [{"targets": list(self.targets)}]}
                ],
            },
            indent=2,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        path = self.workdir / "prometheus.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- the HTTP API ---------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``'s ``data``; raises if Prometheus answers an error."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as reply:
            body = json.load(reply)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus: {body}")
        return body["data"]

    def query(self, expression: str) -> dict[str, float]:
        """An instant query's samples, by their ``instance`` label (or all labels)."""
        data = self.api("query", query=expression)
        return {
            sample["metric"].get("instance", json.dumps(sample["metric"], sort_keys=True)): float(
                sample["value"][1]
            )
            for sample in data["result"]
        }

    def rules_evaluated(self) -> list[dict[str, Any]]:
        """Every rule, once each has been evaluated at least once (else raises `NotYet`)."""
        rules = [rule for group in self.api("rules")["groups"] for rule in group["rules"]]
        if not rules or any(rule["lastEvaluation"].startswith("0001-") for rule in rules):
            raise NotYet("rules not evaluated yet")
        return rules

    def alerts(self) -> set[tuple[str, str, str]]:
        """The active alerts as (name, state, instance), instance "" for a cluster-wide one."""
        return {
            (alert["labels"]["alertname"], alert["state"], alert["labels"].get("instance", ""))
            for alert in self.api("alerts")["alerts"]
        }

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"Prometheus exited:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    @staticmethod
    def wait_until(probe: Callable[[], T], what: str, timeout: float = 30.0) -> T:
        """Poll ``probe`` until it returns something true (not raising `NotYet`)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                value = probe()
            except (NotYet, OSError) as error:
                last = error
            else:
                if value:
                    return value
                last = value
            time.sleep(0.2)  # polling interval only
        raise AssertionError(f"{what}: not within {timeout}s (last: {last})")


def require_prometheus() -> None:
    """Skip the test without Prometheus, or fail it under ``KV_REQUIRE_ETCD=1`` (CI installs
    it, and must not pass by skipping)."""
    if PROMETHEUS is not None:
        return
    if os.environ.get("KV_REQUIRE_ETCD") == "1":
        pytest.fail(f"KV_REQUIRE_ETCD=1 and prometheus not found: {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"needs Prometheus: {INSTALL_HINT}")


class NotYet(Exception):
    """What a probe raises while the state it waits for has not come yet."""
