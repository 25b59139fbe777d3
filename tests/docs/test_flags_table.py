"""Chapter 10's flags table is the one rendered from `kv.cli.FLAGS` (`kv.cli.flags_table`).

The chapter holds the table as Markdown between two comments, so that it reads as a table in
the repository too; this test is what keeps it from drifting: add a flag to `kv.cli.FLAGS`, or
change a default, and it fails until ``python3 -m kv.cli.flags_table`` is pasted in again.
"""

from __future__ import annotations

from kv.cli import FLAGS
from kv.cli.flags_table import markdown_table
from tests.compat.servers import REPO_ROOT

CHAPTER = REPO_ROOT / "chapters" / "10-running-kv" / "chapter.md"
START, END = "<!-- flags:start -->\n", "<!-- flags:end -->\n"


def chapter_table() -> str:
    text = CHAPTER.read_text()
    return text[text.index(START) + len(START) : text.index(END)]


def test_the_chapters_flags_table_is_the_one_rendered_from_the_flags() -> None:
    assert chapter_table() == markdown_table(), "regenerate it: python3 -m kv.cli.flags_table"


def test_the_table_has_one_row_per_flag_with_its_default() -> None:
    rows = markdown_table().splitlines()[2:]
    assert len(rows) == len(FLAGS)
    for row, flag in zip(rows, FLAGS, strict=True):
        assert row.startswith(f"| `{flag.name}` | ")
        assert (f"`{flag.default}`" if flag.default else "*(none)*") in row


def test_a_pipe_in_a_help_text_does_not_split_its_cell() -> None:
    mode = next(flag for flag in FLAGS if flag.name == "--auto-compaction-mode")
    row = markdown_table([mode]).splitlines()[2]
    assert row.count(" | ") == 2 and "periodic\\|revision" in row
