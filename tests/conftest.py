"""What every cross-cutting suite shares: tests marked ``etcd`` need the real etcd.

Without ``etcd`` and ``etcdctl`` such a test is skipped with the install hint; under
``KV_REQUIRE_ETCD=1`` (CI) it fails instead, so that a machine without the oracle cannot
pass the differential tests by skipping them.
"""

from __future__ import annotations

import os

import pytest

from tests.compat.servers import ETCD_BINARY, ETCDCTL_BINARY, INSTALL_HINT

REQUIRE_ENV = "KV_REQUIRE_ETCD"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``etcd`` need the real binaries: skip without them, or fail in CI."""
    if item.get_closest_marker("etcd") is None:
        return
    missing = [b for b in (ETCD_BINARY, ETCDCTL_BINARY) if not os.access(b, os.X_OK)]
    if not missing:
        return
    message = f"{', '.join(missing)} not found: {INSTALL_HINT}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 and {message}", pytrace=False)
    pytest.skip(message)
