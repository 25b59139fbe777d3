"""The chapter's demo runs and prints what the page quotes (``demo.py output``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CHAPTER = Path(__file__).parents[1]
QUOTE = re.compile(r'^```text title="demo\.py output"\n(.*?)^```', re.MULTILINE | re.DOTALL)


def test_the_demo_prints_what_the_page_quotes() -> None:
    printed = subprocess.run(
        [sys.executable, str(CHAPTER / "demo.py")], capture_output=True, text=True, check=True
    ).stdout
    (quoted,) = QUOTE.findall((CHAPTER / "chapter.md").read_text())
    assert printed == quoted
