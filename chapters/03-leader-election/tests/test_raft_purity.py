"""The Raft core stays pure: `kv.raft` does no I/O, reads no clock and draws no randomness of its
own (DEVELOPERS.md). Time is `RawNode.tick`; randomness is a ``random.Random`` passed in, so even
``random`` itself is not imported: the core only names the one method it calls (`RandomSource`).

We read each module's syntax tree, so an import inside a function or behind ``if
TYPE_CHECKING`` is caught too.
"""

from __future__ import annotations

import ast
import importlib.util
import random
from pathlib import Path

import pytest

from kv.raft import RandomSource

FORBIDDEN = frozenset(
    {"asyncio", "grpc", "socket", "os", "time", "threading", "random", "sqlite3", "secrets"}
)
#: Within kv, the core may import only itself: not the server, not the WAL, not the protos.
ALLOWED_KV = "kv.raft"


def raft_directory() -> Path:
    spec = importlib.util.find_spec("kv.raft")
    assert spec is not None and spec.origin is not None, "kv.raft is not importable"
    return Path(spec.origin).parent


MODULES = sorted(raft_directory().rglob("*.py"))


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_the_core_has_its_modules() -> None:
    names = {module.name for module in MODULES}
    assert {
        "messages.py",
        "storage.py",
        "log.py",
        "progress.py",
        "quorum.py",
        "raft.py",
        "follower.py",
        "leader.py",
        "read_only.py",
        "node.py",
        "events.py",
    } <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.name)
def test_a_core_module_imports_nothing_that_does_io_reads_clocks_or_draws_randomness(
    module: Path,
) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
    offending = [
        f"{module.name}:{line} imports {name}"
        for line, name in imported_modules(tree)
        if name.split(".")[0] in FORBIDDEN
        or (name.split(".")[0] == "kv" and not name.startswith(ALLOWED_KV))
    ]
    assert not offending, "kv.raft must stay pure: " + "; ".join(offending)


def test_a_seeded_random_is_a_random_source() -> None:
    source: RandomSource = random.Random(7)
    assert 10 <= source.randrange(10, 20) < 20
