"""What the real etcdctl shows for an RPC kv does not serve: why.

Auth is not planned; its RPCs answer UNIMPLEMENTED with a message saying so
(``kv.server.requests.unimplemented``), and etcdctl prints that message, not gRPC's bare
"Method not found!".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.etcdctl import etcdctl
from tests.compat.servers import Server

pytestmark = pytest.mark.etcd


@pytest.fixture
def kv(tmp_path: Path) -> Iterator[Server]:
    server = Server("kv", tmp_path / "kv")
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["auth", "enable"],
            "Error: rpc error: code = Unimplemented desc = kv: AuthEnable is not planned "
            "(kv has no users, roles or authentication)",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_etcdctl_shows_which_chapter_adds_an_rpc(kv: Server, args: list[str], error: str) -> None:
    result = etcdctl(kv.endpoint, args)
    assert result.exit_code != 0
    assert error in result.stderr.splitlines()
