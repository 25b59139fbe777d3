"""Which imports of a pure core do I/O, read a clock or draw randomness (DEVELOPERS.md).

The pure cores (`kv.mvcc`, `kv.raft`, `kv.watch`, ...) import no asyncio, grpc, socket, os,
time, threading, random or sqlite3. `impure_imports` reads a package's syntax trees, so an
import inside a function or behind ``if TYPE_CHECKING`` is caught too.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

FORBIDDEN = frozenset({"asyncio", "grpc", "socket", "os", "time", "threading", "random", "sqlite3"})


def modules_of(package: str) -> list[Path]:
    """Every ``.py`` file of an importable package."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, f"{package} is not importable"
    return sorted(Path(spec.origin).parent.rglob("*.py"))


def impure_imports(module: Path) -> list[str]:
    """``file:line imports name`` for each forbidden absolute import of ``module``."""
    found = []
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [
        f"{module.name}:{line} imports {name}"
        for line, name in found
        if name.split(".")[0] in FORBIDDEN
    ]
