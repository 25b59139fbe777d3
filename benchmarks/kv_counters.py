"""``kv serve`` that reports its group commit counters on SIGUSR1 (for the benchmark only).

kv's `kv.wal.GroupCommitter` counts the writes it acknowledged and the fsyncs it made
(`kv.wal.CommitStats`), but ``kv serve`` shows them nowhere. Rather than change the server
for a benchmark, the benchmark starts kv through this module: it notes every committer the
server creates, then runs ``kv serve`` unchanged. On SIGUSR1 it prints one line to stderr
(the server's log), ``kv-bench-counters {"writes": ..., "records": ..., "fsyncs": ...}``, the
sums over its committers. Reading the counters costs the server nothing between two signals,
unlike strace, which stops it at every fsync (`benchmarks.fsyncs`). etcd's equivalent is
``etcd_disk_wal_fsync_duration_seconds_count`` on its ``/metrics`` page.

    python -c "from benchmarks.kv_counters import main; raise SystemExit(main())" serve ...
"""

import json
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from kv.wal import GroupCommitter

#: What a counters line starts with in the server's log.
PREFIX = "kv-bench-counters "

#: Every committer the server made (it makes one, and keeps it as long as it runs).
_committers: list[GroupCommitter] = []


def _note_committers() -> None:
    """Have every `GroupCommitter` made from now on join ``_committers``."""
    original = GroupCommitter.__init__

    def init(self: GroupCommitter, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        _committers.append(self)

    GroupCommitter.__init__ = init  # type: ignore[method-assign]


def _report(signum: int, frame: FrameType | None) -> None:
    """The SIGUSR1 handler (Python runs it on the main thread, between two bytecodes)."""
    totals = {"writes": 0, "records": 0, "fsyncs": 0}
    for committer in _committers:
        stats = committer.stats
        totals["writes"] += stats.writes
        totals["records"] += stats.records
        totals["fsyncs"] += stats.fsyncs
    print(PREFIX + json.dumps(totals), file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kv`` command (``serve ...``) with the counters reported on SIGUSR1."""
    from kv.cli import main as kv_main

    _note_committers()
    signal.signal(signal.SIGUSR1, _report)
    return kv_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
