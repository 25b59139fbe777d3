"""Prometheus' text format 0.0.4, as etcd's Go client writes it (chapter 10).

prometheus-client's own ``generate_latest`` follows OpenMetrics' naming: it writes every
counter's ``# HELP`` and ``# TYPE`` under its name plus ``_total``. etcd has two counters
without that suffix (``etcd_server_health_success``, ``etcd_server_health_failures``), so
kv writes the format itself from the same registry: each family under the name its samples
carry, a ``# HELP`` and a ``# TYPE`` line, then its samples. Prometheus reads this format
from etcd (`CONTENT_TYPE`), and reads it from kv the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

#: The ``Content-Type`` of ``/metrics`` (etcd's promhttp sends the same).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def exposition(registry: CollectorRegistry) -> bytes:
    """Every family of ``registry`` in the text format."""
    return "".join(_family(metric) for metric in registry.collect()).encode()


def _family(metric: Metric) -> str:
    name = _exposed_name(metric)
    kind = "untyped" if metric.type == "unknown" else metric.type
    lines = [f"# HELP {name} {_escape_help(metric.documentation)}", f"# TYPE {name} {kind}"]
    lines += [_sample(sample.name, sample.labels, sample.value) for sample in metric.samples]
    return "\n".join(lines) + "\n"


def _exposed_name(metric: Metric) -> str:
    """The family's name as its samples show it: a counter made with prometheus-client's
    classes is named without its ``_total`` and its samples with it."""
    names = {sample.name for sample in metric.samples}
    if metric.type == "counter" and metric.name not in names:
        return metric.name + "_total"
    return str(metric.name)


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    pairs = _go_order(labels.items())
    text = ",".join(f'{key}="{_escape_label(label)}"' for key, label in pairs)
    go_value = go_float(value)
    return f"{name}{{{text}}} {go_value}" if text else f"{name} {go_value}"


def _go_order(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Labels sorted by name, as Go's client writes them, with a bucket's ``le`` last."""
    return sorted(items, key=lambda item: (item[0] == "le", item[0]))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def go_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(value, 'g', -1, 64)`` writes it, as etcd's
    samples and bucket bounds show: the shortest digits that read back the same, in
    exponent form when the exponent is below -4 or 6 and over (``2.147483648e+09``,
    ``20480``, ``0.001``, ``+Inf``)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    shortest = Decimal(repr(value)).normalize()  # repr: the shortest round-tripping digits
    digits = shortest.as_tuple().digits
    exponent = shortest.adjusted()
    if -4 <= exponent < 6:
        return format(shortest, "f")
    sign = "-" if value < 0 else ""
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
