"""Chapter 3's Raft tests share one helper module, ``network.py`` (a deterministic in-memory
network of RawNodes). Chapter folders are not Python packages (their names start with a
digit), so we load it here under the name ``raft_network``; the tests then simply write
``from raft_network import Network``. Chapter 4's tests may import it the same way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if "raft_network" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "raft_network", Path(__file__).with_name("network.py")
    )
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["raft_network"] = _module
    _spec.loader.exec_module(_module)
