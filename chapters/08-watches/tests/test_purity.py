"""The watch hub is pure, as `kv.mvcc` is: no I/O, no clock, no randomness (DEVELOPERS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import impure_imports, modules_of


def test_the_watch_package_has_its_modules() -> None:
    names = {module.name for module in modules_of("kv.watch")}
    assert {"events.py", "stream.py", "hub.py"} <= names


@pytest.mark.parametrize("module", modules_of("kv.watch"), ids=lambda module: module.name)
def test_a_watch_module_imports_nothing_that_does_io_or_reads_clocks(module: Path) -> None:
    offending = impure_imports(module)
    assert not offending, "kv.watch must stay pure: " + "; ".join(offending)
