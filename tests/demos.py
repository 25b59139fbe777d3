"""Loading a chapter's ``demo.py`` as a module, for the chapters' demo tests.

Chapter folders are not Python packages (their names start with a digit), so a demo is loaded
by its path, once, under a name of its own (``chapter_02_demo``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_demo(chapter: Path) -> ModuleType:
    """``chapter/demo.py`` as a module (the same module on every call)."""
    name = f"chapter_{chapter.name[:2]}_demo"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, chapter / "demo.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while being made
        spec.loader.exec_module(module)
    return sys.modules[name]
