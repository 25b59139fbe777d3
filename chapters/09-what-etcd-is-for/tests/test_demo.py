"""The demo runs the four recipes on a real three-member cluster it starts itself, and prints
what the chapter's page shows, line for line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CHAPTER = Path(__file__).parents[1]
QUOTE = re.compile(r'^```text title="demo\.py output"\n(.*?)^```', re.MULTILINE | re.DOTALL)
#: Seconds the demo may take: a cluster start, two leases left to expire, then a Ctrl-C.
DEMO_TIMEOUT = 120


def test_the_demo_prints_what_the_page_shows() -> None:
    shown = QUOTE.search((CHAPTER / "chapter.md").read_text(encoding="utf-8"))
    assert shown is not None
    ran = subprocess.run(
        [sys.executable, str(CHAPTER / "demo.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=DEMO_TIMEOUT,
    )
    assert ran.stdout == shown.group(1)
