"""Run one scenario against the real etcd and the subject, step by step, and compare.

A scenario is a list of steps: etcdctl argument lists (`run_scenario`), or calls of the
project's own `kv.client.KVClient` for what etcdctl 3.4 cannot send (`GrpcComparison`). Each
step runs on the reference (the real etcd) and then on the subject (kv, or a second etcd in
``KV_COMPAT_SUBJECT=etcd`` mode); both results are normalised (`tests.compat.normalise`) and
must be equal before the next step runs. On the first difference the assertion message shows the
steps so far with the failing one marked and the two normalised outputs side by side, differing
lines flagged, base64 keys and values decoded.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from google.protobuf.message import Message

from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.compat.etcdctl import EtcdctlResult, etcdctl
from tests.compat.normalise import normalise_outcome, normalise_result
from tests.compat.servers import Server, ServerOptions

Step = Sequence[str]

#: One gRPC step: a call of the project's client, e.g. ``lambda c: c.range(b"a", count_only=True)``.
Call = Callable[[KVClient], Awaitable[Message]]


@dataclass(frozen=True, slots=True)
class ServerPair:
    """The two servers of one comparison; the reference is always the real etcd."""

    reference: Server
    subject: Server


class StartPair(Protocol):
    """The ``start_pair`` fixture: boot a fresh reference etcd and subject with these options."""

    def __call__(self, options: ServerOptions | None = None) -> ServerPair: ...


class ScenarioMismatch(AssertionError):
    """The subject answered a step differently from the real etcd."""


def _decoded(value: Any, key: str = "") -> Any:
    """For display only: show base64 ``key``/``value`` fields with their decoded bytes."""
    if isinstance(value, list):
        return [_decoded(item, key) for item in value]
    if isinstance(value, dict):
        return {k: _decoded(v, k) for k, v in value.items()}
    if key in {"key", "value", "range_end"} and isinstance(value, str) and value:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
        shown = repr(raw) if len(raw) <= 40 else f"{raw[:37]!r}... ({len(raw)} bytes)"
        return f"{value[:24]}{'...' if len(value) > 24 else ''} ={shown}"
    return value


def render(value: Any) -> list[str]:
    """Pretty, stable lines for side-by-side display."""
    if isinstance(value, str):
        return value.splitlines() or [repr(value)]
    return json.dumps(_decoded(value), indent=2, ensure_ascii=False).splitlines()


def render_result(result: EtcdctlResult) -> list[str]:
    return [
        f"exit code: {result.exit_code}",
        "stdout:",
        *("  " + line for line in render(result.output)),
        "stderr:",
        *("  " + line for line in (result.stderr.splitlines() or ["(empty)"])),
    ]


def side_by_side(left: list[str], right: list[str], left_title: str, right_title: str) -> str:
    """Two columns aligned with difflib; ``|`` marks a changed line, ``<``/``>`` one side only."""
    width = min(max([len(left_title), *map(len, left)]), 72)

    def cell(text: str) -> str:
        return text if len(text) <= width else text[: width - 3] + "..."

    rows = [f"  {cell(left_title):<{width}}   {right_title}", f"  {'-' * width}   {'-' * width}"]
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [
                f"  {cell(a):<{width}}   {b}"
                for a, b in zip(left[i1:i2], right[j1:j2], strict=True)
            ]
            continue
        a_part, b_part = left[i1:i2], right[j1:j2]
        for k in range(max(len(a_part), len(b_part))):
            a = a_part[k] if k < len(a_part) else ""
            b = b_part[k] if k < len(b_part) else ""
            mark = "|" if a and b else ("<" if a else ">")
            rows.append(f"{mark} {cell(a):<{width}} {mark} {b}")
    return "\n".join(rows)


def step_listing(labels: Sequence[str]) -> str:
    """The steps so far, numbered, the last (the failing one) marked ``>>``."""
    return "\n".join(
        f"{'>>' if i == len(labels) - 1 else '  '} {i + 1:2}. {label}"
        for i, label in enumerate(labels)
    )


def mismatch_message(
    pair: ServerPair, title: str, reference: list[str], subject: list[str], context: str = ""
) -> str:
    ref = pair.reference
    sub = pair.subject
    return "\n".join(
        [
            f"{title}: {sub.kind} differs from the real etcd (outputs normalised)",
            *([context] if context else []),
            side_by_side(reference, subject, f"reference {ref.label}", f"subject {sub.label}"),
        ]
    )


def describe(step: Step) -> str:
    return "etcdctl " + " ".join(json.dumps(a) if not a or " " in a else a for a in step)


def run_step(pair: ServerPair, step: Step) -> tuple[EtcdctlResult, EtcdctlResult]:
    """Run one step on both servers; return both normalised results."""
    ref = normalise_result(etcdctl(pair.reference.endpoint, step), pair.reference)
    sub = normalise_result(etcdctl(pair.subject.endpoint, step), pair.subject)
    return ref, sub


def run_scenario(pair: ServerPair, steps: Sequence[Step]) -> list[EtcdctlResult]:
    """Run `steps` in order on both servers, failing at the first step they answer differently.

    Returns the normalised results (equal on both servers), so a test can also state what etcd
    answers, which makes it read as a specification.
    """
    __tracebackhide__ = True  # pytest: show the side-by-side message, not this loop
    results: list[EtcdctlResult] = []
    for index, step in enumerate(steps):
        ref, sub = run_step(pair, step)
        if ref != sub:
            raise ScenarioMismatch(
                mismatch_message(
                    pair,
                    f"step {index + 1} of {len(steps)} ({describe(step)})",
                    render_result(ref),
                    render_result(sub),
                    context=step_listing([describe(s) for s in steps[: index + 1]]),
                )
            )
        results.append(ref)
    return results


async def _outcome(call: Call, client: KVClient) -> Message | EtcdError:
    try:
        return await call(client)
    except EtcdError as error:
        return error


class GrpcComparison:
    """Send the same `KVClient` calls to the reference etcd and the subject; every outcome
    (`normalise_outcome`: the response, or the error's code and exact message) must match.

    ``await cmp.step("label", lambda c: c.range(...))`` runs the call on both servers and
    returns the (equal) normalised outcome; the first difference fails with both side by side.
    Create it inside a running event loop (it opens one `KVClient` per server); use ``async with``.
    """

    def __init__(self, pair: ServerPair) -> None:
        self.pair = pair
        self.reference = KVClient(pair.reference.endpoint)
        self.subject = KVClient(pair.subject.endpoint)
        self.labels: list[str] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.reference.close()
        await self.subject.close()

    async def step(self, label: str, call: Call) -> dict[str, Any]:
        __tracebackhide__ = True  # pytest: show the side-by-side message, not this helper
        self.labels.append(label)
        ref = normalise_outcome(await _outcome(call, self.reference), self.pair.reference)
        sub = normalise_outcome(await _outcome(call, self.subject), self.pair.subject)
        if ref != sub:
            raise ScenarioMismatch(
                mismatch_message(
                    self.pair,
                    f"step {len(self.labels)} ({label})",
                    render(ref),
                    render(sub),
                    context=step_listing(self.labels),
                )
            )
        return ref
