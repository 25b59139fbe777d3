"""The pure core stays pure: `kv.mvcc` does no I/O, reads no clock and draws no randomness.

DEVELOPERS.md: pure cores import no asyncio, grpc, socket, os, time or threading; time and
randomness come in as arguments. We read each module's syntax tree, so an import inside a
function or behind ``if TYPE_CHECKING`` is caught too.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

FORBIDDEN = frozenset({"asyncio", "grpc", "socket", "os", "time", "threading", "random", "sqlite3"})


def mvcc_directory() -> Path:
    spec = importlib.util.find_spec("kv.mvcc")
    assert spec is not None and spec.origin is not None, "kv.mvcc is not importable"
    return Path(spec.origin).parent


MODULES = sorted(mvcc_directory().rglob("*.py"))


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_the_pure_core_has_the_modules_of_chapter_1() -> None:
    names = {module.name for module in MODULES}
    assert {"revision.py", "key_index.py", "tree_index.py", "store.py", "hash.py"} <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.name)
def test_a_pure_module_imports_nothing_that_does_io_or_reads_clocks(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
    offending = [
        f"{module.name}:{line} imports {name}"
        for line, name in imported_modules(tree)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not offending, "kv.mvcc must stay pure: " + "; ".join(offending)


def test_the_import_scan_catches_imports_anywhere_in_a_module() -> None:
    tree = ast.parse("import os.path\ndef f():\n    from time import monotonic\nfrom . import x\n")
    assert imported_modules(tree) == [(1, "os.path"), (3, "time")]
