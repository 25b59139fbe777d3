"""The lessor stays pure: `kv.lease` imports no clock, I/O or randomness, and nothing of kv but
itself. Its time is the ``now`` its callers pass (DEVELOPERS.md's rule for pure cores).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

FORBIDDEN = frozenset(
    {"asyncio", "grpc", "socket", "os", "time", "threading", "random", "sqlite3", "secrets"}
)


def lease_modules() -> list[Path]:
    spec = importlib.util.find_spec("kv.lease")
    assert spec is not None and spec.origin is not None, "kv.lease is not importable"
    return sorted(Path(spec.origin).parent.rglob("*.py"))


@pytest.mark.parametrize("module", lease_modules(), ids=lambda module: module.name)
def test_a_lessor_module_imports_no_clock_io_randomness_or_other_kv_package(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    names = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    names += [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
    ]
    offending = [
        name
        for name in names
        if name.split(".")[0] in FORBIDDEN
        or (name.startswith("kv.") and not name.startswith("kv.lease"))
    ]
    assert not offending, f"{module.name} imports {offending}"
