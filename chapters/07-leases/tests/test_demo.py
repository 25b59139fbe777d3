"""The chapter's demo tells the story the page quotes: the lease outlives its old deadline across
a leader change, then goes on both members at one revision."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from tests import demos

CHAPTER = Path(__file__).parents[1]
QUOTE = re.compile(r'^```text title="demo\.py output"\n(.*?)^```', re.MULTILINE | re.DOTALL)


def load_demo() -> ModuleType:
    return demos.load_demo(CHAPTER)


def test_the_new_leader_does_not_expire_the_lease_at_the_old_deadline() -> None:
    lines = load_demo().main()
    assert "t=10.0: n2 finds expired: []" in lines
    assert "t=18.5: n2 finds expired: ['694d']" in lines


def test_the_revoke_deletes_both_keys_at_one_revision_on_both_members() -> None:
    lines = load_demo().main()
    assert lines[-2:] == [
        "n1: revoke applied, revision 4, keys left []",
        "n2: revoke applied, revision 4, keys left []",
    ]


def test_the_page_quotes_the_demo_as_it_runs() -> None:
    quoted = QUOTE.findall((CHAPTER / "chapter.md").read_text(encoding="utf-8"))
    assert quoted == ["\n".join(load_demo().main()) + "\n"]
