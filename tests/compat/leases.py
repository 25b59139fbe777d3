"""Helpers for the lease differential tests (chapter 7): etcdctl lease commands on both servers,
each with its own lease ID.

A server chooses the ID of a lease granted with ID 0, and etcd and kv choose different ones
(the start time is in it). So a step names the lease as ``{lease}``; each server gets its own
ID there (in hex, as etcdctl takes it), and in what it answers, its ID -- in decimal in JSON,
in hex in text -- is masked as ``<lease>`` before the answers are compared. Lists of keys
(``timetolive --keys``) are sorted: etcd returns them in map order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from tests.compat.etcdctl import EtcdctlResult, etcdctl
from tests.compat.normalise import Identity, normalise_result
from tests.compat.scenario import ScenarioMismatch, render_result, side_by_side
from tests.compat.servers import Server

MASK = "<lease>"


def mask(value: Any, lease_ids: Sequence[int] | Mapping[int, str]) -> Any:
    """``value`` (parsed JSON or text) with each of ``lease_ids`` and the cluster ID masked,
    key lists sorted. Each ID becomes `MASK`, or its own label when ``lease_ids`` maps IDs to
    labels (several leases whose roles must stay apart, such as two lock sessions)."""
    labels = lease_ids if isinstance(lease_ids, Mapping) else dict.fromkeys(lease_ids, MASK)
    if isinstance(value, dict):
        return {
            # A 3-member cluster's ID is not the one `Server` computes for a single member.
            key: "<cluster_id>"
            if key == "cluster_id"
            else sorted(mask(item, labels))
            if key == "keys" and isinstance(item, list)
            else mask(item, labels)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask(item, labels) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and value in labels:
        return labels[value]
    if isinstance(value, str):
        for lease_id, label in labels.items():
            value = value.replace(f"{lease_id:016x}", label).replace(f"{lease_id:x}", label)
            value = value.replace(str(lease_id), label)
    return value


def lease_result(
    server: Identity, endpoint: str, step: Sequence[str], lease_ids: Sequence[int]
) -> EtcdctlResult:
    """Run ``step`` (``{lease}`` replaced by the first of ``lease_ids``) on one server."""
    args = [arg.replace("{lease}", f"{lease_ids[0]:x}") if lease_ids else arg for arg in step]
    result = normalise_result(etcdctl(endpoint, args), server)
    return EtcdctlResult(
        result.exit_code, mask(result.output, lease_ids), mask(result.stderr, lease_ids)
    )


def run_lease_steps(
    reference: tuple[Server, Sequence[int]],
    subject: tuple[Server, Sequence[int]],
    steps: Sequence[Sequence[str]],
) -> list[EtcdctlResult]:
    """Run ``steps`` on both servers, each with its lease IDs; fail at the first difference."""
    __tracebackhide__ = True
    results = []
    for index, step in enumerate(steps):
        ref = lease_result(reference[0], reference[0].endpoint, step, reference[1])
        sub = lease_result(subject[0], subject[0].endpoint, step, subject[1])
        if ref != sub:
            table = side_by_side(
                render_result(ref),
                render_result(sub),
                "reference etcd",
                f"subject {subject[0].kind}",
            )
            raise ScenarioMismatch(f"step {index + 1} (etcdctl {' '.join(step)}) differs:\n{table}")
        results.append(ref)
    return results


def grant_on_both(reference: Server, subject: Server, ttl: str) -> list[EtcdctlResult]:
    """``etcdctl lease grant TTL`` on both; the answers must match with each one's new ID
    masked. Returns both results (normalised, unmasked) so the caller learns the IDs."""
    __tracebackhide__ = True
    results = [
        normalise_result(etcdctl(server.endpoint, ["lease", "grant", ttl]), server)
        for server in (reference, subject)
    ]
    masked = [
        EtcdctlResult(r.exit_code, mask(r.output, _granted_ids(r)), r.stderr) for r in results
    ]
    if masked[0] != masked[1]:
        table = side_by_side(
            render_result(masked[0]), render_result(masked[1]), "reference etcd", "subject"
        )
        raise ScenarioMismatch(f"etcdctl lease grant {ttl} differs:\n{table}")
    return results


def _granted_ids(result: EtcdctlResult) -> list[int]:
    return [int(result.output["ID"])] if isinstance(result.output, dict) else []


def grant(server: Server, ttl: int) -> int:
    """``etcdctl lease grant TTL`` on ``server``; the ID it granted."""
    result = etcdctl(server.endpoint, ["lease", "grant", str(ttl)])
    assert result.exit_code == 0, result.stderr
    return int(result.output["ID"])


def wait_until_gone(server: Server, key: str, timeout: float) -> float:
    """Poll ``get KEY`` until it is gone; the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        result = etcdctl(server.endpoint, ["get", key])
        if result.exit_code == 0 and not result.output.get("kvs"):
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{key} still there after {timeout} s on {server.kind}")


__all__ = [
    "MASK",
    "grant",
    "grant_on_both",
    "lease_result",
    "mask",
    "run_lease_steps",
    "wait_until_gone",
]
