"""The table of ``kv serve``'s flags that chapter 10 ("Running kv") prints, rendered from
`kv.cli.FLAGS` so that it cannot drift from what ``kv serve`` accepts.

``python3 -m kv.cli.flags_table`` prints it; ``tests/docs/test_flags_table.py`` checks that the
chapter shows exactly this table, so a flag added to `kv.cli.FLAGS` fails that test until the
chapter's table is regenerated.
"""

from __future__ import annotations

from collections.abc import Sequence

from kv.cli.flags import FLAGS, Flag

HEADER = (
    "| Flag | Default (etcd 3.4.23) | What it does |",
    "|---|---|---|",
)


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell: a ``|`` would end the cell."""
    return text.replace("|", "\\|")


def markdown_table(flags: Sequence[Flag] = FLAGS) -> str:
    """``flags`` as a Markdown table, one row per flag in the order ``kv serve --help`` lists
    them; an empty default (no metrics URL, say) shows as *(none)*."""
    rows = [
        f"| `{flag.name}` | "
        f"{f'`{flag.default}`' if flag.default else '*(none)*'} | {_cell(flag.help)} |"
        for flag in flags
    ]
    return "\n".join([*HEADER, *rows]) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
