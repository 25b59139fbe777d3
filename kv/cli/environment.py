"""What ``kv serve``'s command line and ``ETCD_*`` environment amount to: one `ServerConfig`
(chapter 1).

etcd 3.4's rules (``pkg/flags/flag.go``): a variable sets a flag not given on the command line;
a flag given both ways is refused rather than silently picking one, and ``ETCD_*`` variables
kv does not know are reported as unrecognized (``kv serve`` logs them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kv.cli.flags import ENV_PREFIX, FLAGS, Flag
from kv.server.config import ServerConfig
from kv.server.flag_values import ConfigError


class EnvError(ConfigError):
    """An ``ETCD_*`` variable kv cannot use (bad value, or a flag given twice)."""


@dataclass(frozen=True, slots=True)
class ServeFlags:
    """What ``kv serve``'s flags and environment amount to."""

    config: ServerConfig
    env_used: list[str] = field(default_factory=list)  # "ETCD_NAME=x", as etcd logs them
    env_unrecognized: list[str] = field(default_factory=list)


def serve_flags(given: Mapping[str, str | None], environ: Mapping[str, str]) -> ServeFlags:
    """Combine command-line values (field -> text, None if not given) with ``ETCD_*`` variables.

    etcd 3.4's rules (``pkg/flags/flag.go`` ``SetFlagsFromEnv``, ``verifyEnv``): a variable
    sets a flag not given on the command line; an empty variable is ignored; a variable for a
    flag that *was* given is an error; other ``ETCD_*`` variables are reported unrecognized.

    Raises:
        ConfigError: a bad value, a conflict, or a configuration `ServerConfig` refuses.
    """
    values: dict[str, object] = {}
    explicit: set[str] = set()
    used: list[str] = []
    for flag in FLAGS:
        text = given.get(flag.field)
        if text is not None:
            if flag.env in environ:
                raise EnvError(
                    f'conflicting environment variable "{flag.env}" is shadowed by '
                    "corresponding command-line flag (either unset environment variable or "
                    "disable flag)"
                )
            source = flag.name
        elif environ.get(flag.env):
            text = environ[flag.env]
            source = flag.env
            used.append(f"{flag.env}={text}")
        else:
            continue
        explicit.add(flag.name)
        values[flag.field] = _parse(flag, text, source)
    # etcd: etcdmain/config.go -- a member listening on chosen addresses must say which of
    # them clients should use, or clients would be told "http://localhost:2379".
    if "--listen-client-urls" in explicit and "--advertise-client-urls" not in explicit:
        raise ConfigError(
            "--advertise-client-urls is required when --listen-client-urls is set explicitly"
        )
    known = {flag.env for flag in FLAGS}
    unrecognized = [
        f"{key}={value}"
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX + "_") and (key not in known or not value)
    ]
    return ServeFlags(ServerConfig(**values), used, unrecognized)  # type: ignore[arg-type]


def _parse(flag: Flag, text: str, source: str) -> object:
    if flag.choices is not None and text not in flag.choices:
        raise ConfigError(f'invalid value "{text}" for {source}: want one of {flag.choices}')
    try:
        return flag.parse(text)
    except ValueError:
        raise ConfigError(f'invalid value "{text}" for {source}: parse error') from None
