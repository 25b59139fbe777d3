"""``kv serve``'s log: stderr at etcd's ``--log-level``, in lines shaped like etcd 3.4's
(chapter 1; ``kv snapshot restore`` logs the same way).
"""

from __future__ import annotations

import logging
import sys

# etcd's --log-level names mapped onto the standard library's levels.
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
# Close to etcd 3.4's default log lines: "2024-01-02 03:04:05.678901 I | embed: ...".
_LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname).1s | %(name)s: %(message)s"
_LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def configure_logging(level: str) -> None:
    """Log to stderr at etcd's ``--log-level``, in lines shaped like etcd 3.4's."""
    logging.basicConfig(
        level=_LOG_LEVELS[level],
        format=_LOG_FORMAT,
        datefmt=_LOG_DATE_FORMAT,
        stream=sys.stderr,
        force=True,
    )
