"""No Try it command of chapters 1 to 5 talks to etcd's default ports.

The README's Quickstart leaves a ``kv serve`` on 127.0.0.1:2379 and 2380, and the chapters'
Try its must work beside it: every etcdctl command names its endpoints (``--endpoints``, or
``ETCDCTL_ENDPOINTS`` exported earlier in its block), since etcdctl without them asks
127.0.0.1:2379, the reader's other server, and no command names 2379 or 2380 itself.
"""

from __future__ import annotations

import re

import pytest

from tests.compat.servers import REPO_ROOT
from tests.docs.shell import sh_blocks

CHAPTERS = sorted(path.parent.name for path in (REPO_ROOT / "chapters").glob("0[1-5]-*/chapter.md"))
TRY_IT = re.compile(r"^(#+) (Try it.*)$", re.MULTILINE)


def try_it_blocks(chapter: str) -> list[str]:
    """The ``sh`` blocks of every Try it section (or subsection) of ``chapter``."""
    text = (REPO_ROOT / "chapters" / chapter / "chapter.md").read_text()
    return [
        block
        for level, title in TRY_IT.findall(text)
        for block in sh_blocks(chapter, f"{level} {title}")
    ]


def commands_without_endpoints(block: str) -> list[str]:
    """The etcdctl commands of ``block`` that would ask etcdctl's default endpoint."""
    found = []
    exported = False
    for line in block.splitlines():
        command = line.split("#", 1)[0]
        if re.search(r"\bETCDCTL_ENDPOINTS=", command):
            exported = exported or command.lstrip().startswith("export")
        if re.search(r"\betcdctl\b", command) and not (
            exported or "--endpoints" in command or "ETCDCTL_ENDPOINTS=" in command
        ):
            found.append(line)
    return found


def test_every_chapter_has_a_try_it_with_commands() -> None:
    assert len(CHAPTERS) == 5 and all(try_it_blocks(chapter) for chapter in CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_try_it_commands_name_their_endpoints_and_not_etcds_default_ports(chapter: str) -> None:
    blocks = try_it_blocks(chapter)
    unnamed = [line for block in blocks for line in commands_without_endpoints(block)]
    assert not unnamed, f"etcdctl would ask 127.0.0.1:2379: {unnamed}"
    default_ports = [
        line for b in blocks for line in b.splitlines() if re.search(r":23(79|80)\b", line)
    ]
    assert not default_ports, f"these commands use etcd's default ports: {default_ports}"


def test_the_check_catches_an_etcdctl_command_without_endpoints() -> None:
    assert commands_without_endpoints("etcdctl get k\n") == ["etcdctl get k"]
    assert commands_without_endpoints("unset ETCDCTL_ENDPOINTS\netcdctl get k\n")
    assert not commands_without_endpoints("export ETCDCTL_ENDPOINTS=h:1\netcdctl get k\n")
    assert not commands_without_endpoints("etcdctl --endpoints=h:1 get k  # etcdctl\n")
    assert not commands_without_endpoints("ETCDCTL_ENDPOINTS=h:1 etcdctl get k\n")
