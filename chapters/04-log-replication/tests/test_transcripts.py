"""Chapter 4's transcripts, ``testdata/*.txt`` (replication, ReadIndex),
run by the interpreter in ``tests/raft_transcripts.py``.

After a change to the core, regenerate them and read the diff::

    cd chapters/04-log-replication/tests
    KV_REWRITE_TRANSCRIPTS=1 python3 -m pytest test_transcripts.py && git diff testdata
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.raft_transcripts import check_transcript, transcripts

TRANSCRIPTS = transcripts(Path(__file__).with_name("testdata"))


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda path: path.stem)
def test_transcript(path: Path) -> None:
    check_transcript(path)
