"""``kv tui``'s command line: which app it opens for which arguments, attach mode with
``--endpoints`` (and ``--cluster-dir``) against a real member, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kv.cli import build_parser
from tests.tui.attach_pilot import one_leader, until
from tui.app import SimApp
from tui.attach import AttachApp
from tui.command import TuiError, make_app
from tui.speed import TUI_NETWORK


def app_for(*argv: str) -> object:
    return make_app(build_parser().parse_args(["tui", *argv]))


def test_kv_tui_runs_the_simulator_on_the_tui_network_from_the_seed() -> None:
    app = app_for("--seed", "7", "--nodes", "5")
    assert isinstance(app, SimApp)
    assert app.session.seed == 7 and len(app.session.cluster.ids) == 5
    assert app.session.config.network == TUI_NETWORK


async def test_kv_tui_endpoints_attaches_to_a_real_member(kv_server: str) -> None:
    app = app_for("--endpoints", kv_server)
    assert isinstance(app, AttachApp)
    async with app.run_test(size=(100, 30)) as pilot:
        leader = await until(pilot, lambda: one_leader(app), "leader")
        assert leader.endpoint == kv_server


async def test_kv_tui_passes_the_cluster_dir_to_attach_mode(kv_server: str, tmp_path: Path) -> None:
    app = app_for("--endpoints", kv_server, "--cluster-dir", str(tmp_path))
    assert isinstance(app, AttachApp)
    # Not a kv cluster's directory: attach mode looked there, says so, offers no kill.
    assert app.local is None
    assert [n for n in app.notes if n.startswith("no kill/restart/partition")], app.notes


def test_cluster_dir_without_endpoints_is_an_error() -> None:
    with pytest.raises(TuiError, match="--cluster-dir goes with --endpoints") as error:
        app_for("--cluster-dir", "somewhere")
    assert error.value.status == 2


def test_a_trace_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TuiError, match="cannot load") as error:
        app_for("--load", str(tmp_path / "missing.json"))
    assert error.value.status == 1
