"""How etcd's flags read their values: Go durations, URLs and their addresses (chapter 1).

`kv.server.config` holds what ``kv serve`` was told; this module holds how one flag's text
becomes a value, with the messages etcd prints when it cannot, and `ConfigError`, which every
refusal of a flag raises:

* **Durations** as Go writes them (``10m``, ``1m30s``, ``200ms``): etcd's duration flags
  (``--auto-compaction-retention``, ``--experimental-watch-progress-notify-interval``) parse
  them with ``time.ParseDuration``, and its logs print them with ``Duration.String``.
* **URLs** as etcd's URL flags take them (etcd: ``pkg/types/urls.go``): a comma-separated
  list, each ``scheme://host:port`` with no path; and the addresses a member binds and dials
  for a listen URL. kv refuses what it cannot serve (TLS, unix sockets) with a ``kv:``
  message.
* Go's ``%q``, which etcd's messages use to quote a flag's text.
"""

from __future__ import annotations

import ipaddress
import re
from fractions import Fraction
from urllib.parse import SplitResult, urlsplit

_URL_SCHEMES = ("http", "https", "unix", "unixs")


class ConfigError(ValueError):
    """A flag value that etcd, or kv, refuses. The message names the flag and the reason."""


#: Go's duration units in nanoseconds (``time.ParseDuration``; both micro signs are accepted).
_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_MAX_DURATION_NS = 2**63 - 1


def parse_go_duration(text: str) -> int:
    """A Go duration (``10m``, ``1m30s``, ``-1.5h``, ``0``) in nanoseconds, refused with Go's
    messages (``time.ParseDuration``): etcd's duration flags print them when they fail.

    Raises:
        ValueError: ``time: invalid duration "x"``, ``time: missing unit in duration "10"``
            or ``time: unknown unit "x" in duration "1x"``.
    """
    rest = text[1:] if text[:1] in ("-", "+") else text
    if rest == "0":
        return 0
    invalid = ValueError(f"time: invalid duration {go_quote(text)}")
    if not rest:
        raise invalid
    total = Fraction(0)
    while rest:
        match = _DURATION_PART.match(rest)
        assert match is not None  # every group may be empty
        whole, fraction, unit = match.groups()
        if not whole and not fraction:
            raise invalid  # a part must start with a digit or ".digit"
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _DURATION_UNITS_NS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        number = Fraction(int(whole or "0")) + Fraction(
            int(fraction or "0"), 10 ** len(fraction or "")
        )
        total += number * _DURATION_UNITS_NS[unit]
        rest = rest[match.end() :]
    if total > _MAX_DURATION_NS:
        raise invalid
    return -int(total) if text[0] == "-" else int(total)


def format_go_duration(nanoseconds: int) -> str:
    """Go's ``Duration.String``: ``1h0m0s``, ``1m30s``, ``1.5s``, ``200ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign, size = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)
    if size < 1_000_000_000:
        unit, scale = next((u, s) for u, s in _SUBSECOND_UNITS if size >= s)
        return f"{sign}{_decimal(size, scale)}{unit}"
    hours, rest = divmod(size, _DURATION_UNITS_NS["h"])
    minutes, rest = divmod(rest, _DURATION_UNITS_NS["m"])
    seconds = f"{_decimal(rest, _DURATION_UNITS_NS['s'])}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    return f"{sign}{minutes}m{seconds}" if minutes else f"{sign}{seconds}"


_SUBSECOND_UNITS = (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1))


def _decimal(value: int, scale: int) -> str:
    """``value / scale`` in decimal, without trailing zeros (``1500, 1000`` -> ``1.5``)."""
    whole, fraction = divmod(value, scale)
    digits = str(fraction).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def parse_duration(text: str) -> float:
    """A Go duration (``10m``, ``1m30s``, ``200ms``; ``0``) in seconds, as etcd's flags take it."""
    return parse_go_duration(text) / 1e9


def split_urls(text: str) -> tuple[str, ...]:
    """Split a URL flag's value (``url1,url2``) into its URLs, as etcd's URL flags do."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# --8<-- [start:bind]
def bind_address(url: str) -> str:
    """The gRPC bind address (``host:port``) for a listen URL such as ``http://127.0.0.1:2379``.

    Raises:
        ConfigError: the URL is not one etcd would listen on, or needs what kv lacks (TLS,
            unix sockets).
    """
    parts = _parse_url(url)
    if parts.scheme in ("https", "unixs"):
        raise ConfigError(
            f"kv: cannot listen on {url}: TLS is not supported by kv yet "
            "(use an http:// URL; etcd would also want --cert-file and --key-file)"
        )
    if parts.scheme == "unix":
        raise ConfigError(f"kv: cannot listen on {url}: unix sockets are not supported by kv")
    host, port = _host_port(url, parts)
    # etcd: embed/config.go checkBindURLs -- a listen URL names an IP, or localhost.
    if host != "localhost" and not _is_ip(host):
        raise ConfigError(f"expected IP in URL for binding ({url})")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --8<-- [end:bind]


def socket_address(url: str) -> tuple[str, int]:
    """The host and port an asyncio listener binds for listen URL ``url`` (IPv6 hosts without
    their brackets); `bind_address` checks the URL."""
    host, _, port = bind_address(url).rpartition(":")
    return host.strip("[]"), int(port)


def dial_address(url: str) -> str:
    """The address a member dials to reach itself on its listen URL ``url`` (chapter 9: its
    Lock and Election services are clients of the member). A wildcard host (``0.0.0.0``,
    ``::``) is reached through loopback."""
    host, _, port = bind_address(url).rpartition(":")
    loopback = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}
    return f"{loopback.get(host, host)}:{port}"


def _parse_url(url: str) -> SplitResult:
    """Check a URL the way etcd's URL flags do (etcd: pkg/types/urls.go NewURLs)."""
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ConfigError(f"invalid URL {url!r}: {error}") from None
    if parts.scheme not in _URL_SCHEMES:
        raise ConfigError(f"URL scheme must be http, https, unix, or unixs: {url}")
    if parts.path not in ("", "/") and parts.scheme in ("http", "https"):
        raise ConfigError(f"URL must not contain a path: {url}")
    return parts


def _host_port(url: str, parts: SplitResult) -> tuple[str, int]:
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if port is None:
        raise ConfigError(f'URL address does not have the form "host:port": {url}')
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_url(url: str) -> None:
    """A URL etcd would accept in any URL flag: known scheme, ``host:port``, no path."""
    parts = _parse_url(url)
    if parts.scheme in ("http", "https"):
        host, _ = _host_port(url, parts)
        if not host:
            raise ConfigError(f"unexpected empty host ({url})")


def go_quote(text: str) -> str:
    """Go's ``%q`` for the plain text of flags: double quotes (etcd's messages use it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
