"""The chapter's demo: kill -9 in a stream of writes, lose nothing -- on ports of its own.

``chapters/02-durability/demo.py`` starts real ``kv serve`` processes. It must run while a
reader's own ``kv serve`` holds etcd's ports (so it takes free ones for clients and peers),
and a server that dies before it answers must stop the demo at once, with the server's log.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import ModuleType

import pytest

from tests import demos

CHAPTER = Path(__file__).resolve().parents[1]


def load_demo() -> ModuleType:
    return demos.load_demo(CHAPTER)


async def test_the_demo_loses_no_acknowledged_write(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await load_demo().main()
    out = capsys.readouterr().out
    assert "SIGKILL after 300 answered writes" in out
    assert "lost acknowledged writes: 0;" in out


async def test_a_server_that_dies_while_starting_stops_the_demo_with_its_log(
    tmp_path: Path,
) -> None:
    demo = load_demo()
    log_path = tmp_path / "kv.log"
    with socket.socket() as squatter:  # the client port is taken: kv serve exits at once
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ports = demo.Ports(squatter.getsockname()[1], demo.Ports.free().peer)
        server = demo.start(tmp_path / "data.etcd", ports, log_path)
        try:
            with pytest.raises(demo.ServerDied) as died:
                await demo.wait_ready(ports.endpoint, server, log_path)
        finally:
            server.kill()
            server.wait()
    assert "kv serve exited with 1 before it answered" in str(died.value)
    assert "address already in use" in str(died.value)
