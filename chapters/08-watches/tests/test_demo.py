"""The demo prints what the chapter's Try it says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CHAPTER = Path(__file__).parents[1]


def test_the_demo_prints_what_the_page_shows() -> None:
    text = (CHAPTER / "chapter.md").read_text(encoding="utf-8")
    shown = re.search(r'```text title="demo.py output"\n(.*?)```', text, re.DOTALL)
    assert shown is not None
    ran = subprocess.run(
        [sys.executable, str(CHAPTER / "demo.py")], capture_output=True, text=True, check=True
    )
    assert ran.stdout == shown.group(1)
