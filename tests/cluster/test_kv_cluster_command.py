"""``kv cluster``: a local cluster of real ``kv serve`` processes, and the failures played on it.

Every test runs real processes -- no mocks: members are killed with real signals and cut off
through their real fault hooks. Nothing sleeps for correctness: each expectation ("a new
leader appears") is polled with a deadline, and a timeout fails with the last status table.
Elections use 50 ms heartbeats and 500 ms election timeouts (see conftest), so each one takes
well under a second on an idle machine; the deadlines leave room for a busy one.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.cli import main
from kv.cluster import control, faults, processes, status, supervisor
from kv.cluster.layout import HOST, ClusterError, Layout, LocalMember, port_in_use
from kv.cluster.state import load, require
from tests.cluster.conftest import (
    ELECTION_MS,
    HEARTBEAT_MS,
    free_base_port,
    leftover_members,
    remember,
)
from tests.compat.servers import ETCDCTL_BINARY, REPO_ROOT

T = TypeVar("T")

#: How long an election (or a restart, or a catch-up) may take before the test fails.
DEADLINE = 20.0
POLL = 0.05


# -- helpers ------------------------------------------------------------------------------------


def statuses(layout: Layout) -> list[status.MemberStatus]:
    return status.collect(require(layout.root))


def eventually(check: Callable[[], T | None], what: str, layout: Layout) -> T:
    """Poll ``check`` until it returns something other than None/False; fail at `DEADLINE`."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            table = status.format_table(layout, statuses(layout))
            raise AssertionError(f"no {what} within {DEADLINE:.0f} s; status:\n{table}")
        time.sleep(POLL)


def agreed_leader(layout: Layout, among: Sequence[str] | None = None) -> LocalMember | None:
    """The leader, if every member of ``among`` (default: all) serves and agrees on it and on
    the term, and the leader itself is among them and says it leads."""
    names = set(among) if among is not None else {member.name for member in layout.members}
    group = [s for s in statuses(layout) if s.member.name in names]
    if not all(s.serving for s in group):
        return None
    if len({s.leader for s in group}) != 1 or len({s.term for s in group}) != 1:
        return None
    leader = layout.by_id(group[0].leader)
    if leader is None or leader.name not in names:
        return None
    return leader


def one_status(layout: Layout, name: str) -> status.MemberStatus:
    return next(s for s in statuses(layout) if s.member.name == name)


def put(member: LocalMember, key: bytes, value: bytes) -> int:
    """Put through ``member`` (a follower forwards it to the leader); the revision."""
    with grpc.insecure_channel(member.endpoint) as channel:
        answer = rpc_pb2_grpc.KVStub(channel).Put(
            rpc_pb2.PutRequest(key=key, value=value), timeout=5.0
        )
        return int(answer.header.revision)


def linearizable_get(member: LocalMember, key: bytes) -> bytes | None:
    """A linearizable read through ``member`` (ReadIndex): None if it cannot answer yet."""
    try:
        with grpc.insecure_channel(member.endpoint) as channel:
            answer = rpc_pb2_grpc.KVStub(channel).Range(rpc_pb2.RangeRequest(key=key), timeout=2.0)
    except grpc.RpcError:
        return None
    return answer.kvs[0].value if answer.kvs else b""


class Foreground:
    """``python -m kv cluster start`` in a subprocess, its stdout read line by line."""

    def __init__(self, args: Sequence[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        env["PYTHONPATH"] = str(REPO_ROOT)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kv", "cluster", "start", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = DEADLINE) -> str:
        """The first line (from here on) that contains ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                output = "\n".join(self.lines)
                raise AssertionError(f"kv cluster start never printed {text!r}:\n{output}")
            self.lines.append(line)
            if text in line:
                return line

    def stop(self, signum: signal.Signals = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def foreground(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Foreground]]:
    """Start ``kv cluster start`` in the foreground of a subprocess; cleaned up after the test."""
    started: list[tuple[Foreground, Path]] = []

    def start(root: Path, base_port: int, *extra: str) -> Foreground:
        remember(request, Layout(root, base_port=base_port))
        args = ["--data-dir", str(root), "--base-port", str(base_port)]
        process = Foreground([*args, "--heartbeat-interval=50", "--election-timeout=500", *extra])
        started.append((process, root))
        return process

    yield start
    for process, root in started:
        process.kill()
        state = load(root)
        if state is not None:  # the test failed before Ctrl-C: stop what is left
            control.stop_members(state, hurry=lambda: True)


def run_kv(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m kv ARGS`` in a subprocess, as a learner's other terminal would run it."""
    return subprocess.run(
        [sys.executable, "-m", "kv", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=False,
    )


# -- a running cluster ------------------------------------------------------------------------


def test_start_serves_with_one_leader_and_writes_the_state_file(cluster: Layout) -> None:
    leader = eventually(lambda: agreed_leader(cluster), "agreed leader", cluster)
    rows = statuses(cluster)
    assert [row.state for row in rows].count("leader") == 1
    assert next(row for row in rows if row.is_leader).member == leader
    assert all(row.running and row.blocked == () for row in rows)

    written = json.loads((cluster.root / "cluster.json").read_text())
    assert [member["name"] for member in written["members"]] == ["n1", "n2", "n3"]
    assert [member["client_url"] for member in written["members"]] == [
        f"http://{HOST}:{cluster.base_port + 10 * i}" for i in range(3)
    ]
    for entry, member in zip(written["members"], cluster.members, strict=True):
        assert entry["id"] == member.hex_id
        assert processes.is_running(member, entry["pid"])
        assert member.log_file.exists()

    table = status.format_table(cluster, rows)
    assert table.splitlines()[0].split()[:3] == ["NAME", "STATE", "PID"]
    assert [line.split()[:2] for line in table.splitlines()[1:]] == [
        [member.name, "leader" if member == leader else "follower"] for member in cluster.members
    ]


def test_kill_the_leader_a_new_one_is_elected_and_the_old_one_rejoins(cluster: Layout) -> None:
    old = eventually(lambda: agreed_leader(cluster), "agreed leader", cluster)
    old_term = one_status(cluster, old.name).term
    others = [member.name for member in cluster.members if member != old]

    assert control.kill(cluster.root, old.name).startswith(f"killed {old.name} (pid ")
    assert one_status(cluster, old.name).state == "down"
    new = eventually(lambda: agreed_leader(cluster, others), "new leader", cluster)
    assert new != old
    assert one_status(cluster, new.name).term > old_term
    put(cluster.member(others[0]), b"written-while-down", b"yes")

    message = control.restart(cluster.root, old.name)
    assert message.startswith(f"restarted {old.name} (pid ")
    # It rejoined: all three agree on a leader and a term (not necessarily the new leader's:
    # without PreVote, etcd's default, a member that restarts and times out before the
    # leader's first heartbeat reaches it starts an election), and a linearizable read
    # through it (ReadIndex from the leader, then its own log applied) sees the write it missed.
    eventually(lambda: agreed_leader(cluster), "agreement after the restart", cluster)
    eventually(
        lambda: linearizable_get(old, b"written-while-down") == b"yes",
        "catch-up of the restarted member",
        cluster,
    )


def killed_and_gone(layout: Layout, member: LocalMember) -> int:
    """Kill ``member`` once the cluster has a leader; its client port, once free again."""
    eventually(lambda: agreed_leader(layout), "agreed leader", layout)
    control.kill(layout.root, member.name)
    port = member.ports[0][0]
    eventually(lambda: not port_in_use(port), f"port {port} free after the kill", layout)
    return port


def listening_on(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen()
    return listener


def test_a_restart_right_after_a_kill_waits_for_the_ports_the_dead_member_still_held(
    cluster: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SIGKILLed process loses its memory -- and with it the command line by which `kill`
    # tells it has exited -- a moment before the kernel closes its sockets. Here a socket of
    # the test's plays the dying member's listener, and closes once the restart has found its
    # port in use: the restart must wait for the port, not give up on it.
    victim = cluster.member("n3")
    port = killed_and_gone(cluster, victim)
    listener = listening_on(port)
    probe = processes.port_in_use
    found_in_use: list[int] = []

    def probe_then_let_go(probed: int) -> bool:
        in_use = probe(probed)
        if in_use and probed == port:
            found_in_use.append(probed)
            listener.close()  # the dying process's files are closed now
        return in_use

    monkeypatch.setattr(processes, "port_in_use", probe_then_let_go)
    try:
        message = control.restart(cluster.root, victim.name)
    finally:
        listener.close()
    assert found_in_use == [port]
    assert message.startswith(f"restarted {victim.name} (pid ")
    eventually(lambda: agreed_leader(cluster), "agreement after the restart", cluster)


def test_a_restart_gives_up_on_a_port_something_else_keeps(
    cluster: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = cluster.member("n3")
    port = killed_and_gone(cluster, victim)
    monkeypatch.setattr(processes, "PORT_WAIT_SECONDS", 0.2)
    with listening_on(port), pytest.raises(ClusterError) as refused:
        control.restart(cluster.root, victim.name)
    assert str(refused.value) == (
        f"port {port} (n3's client port) is still in use 0.2 s after n3 stopped: n3 cannot start"
    )


def test_partition_the_leader_then_heal(cluster: Layout) -> None:
    old = eventually(lambda: agreed_leader(cluster), "agreed leader", cluster)
    old_term = one_status(cluster, old.name).term
    others = [member.name for member in cluster.members if member != old]

    assert control.partition(cluster.root, [old.name]) == [
        f"partitioned: {old.name} | {' '.join(others)}"
    ]
    rows = {row.member.name: row for row in statuses(cluster)}
    assert set(rows[old.name].blocked or ()) == {cluster.member(name).member_id for name in others}
    assert all(rows[name].blocked == (old.member_id,) for name in others)

    # The majority elects a leader of its own, in a later term...
    new = eventually(lambda: agreed_leader(cluster, others), "leader of the majority", cluster)
    assert new != old
    assert one_status(cluster, new.name).term > old_term
    # ...and the cut-off leader steps down: CheckQuorum, it has not heard from a quorum.
    eventually(
        lambda: not one_status(cluster, old.name).is_leader, "old leader stepping down", cluster
    )

    assert control.heal(cluster.root)[0].startswith("healed")
    assert all(row.blocked == () for row in statuses(cluster))
    eventually(lambda: agreed_leader(cluster), "one leader and term after healing", cluster)
    assert require(cluster.root).partition == []


def test_pre_vote_is_passed_to_every_member(tmp_path: Path) -> None:
    layout = Layout(tmp_path, size=3, pre_vote=True)
    assert all("--pre-vote" in layout.serve_flags(member) for member in layout.members)
    assert not any("--pre-vote" in Layout(tmp_path).serve_flags(n) for n in layout.members)


def test_flags_after_double_dash_go_to_every_member_after_the_layouts_own(
    tmp_path: Path,
) -> None:
    extra = ("--quota-backend-bytes=1000000", "--experimental-enable-lease-checkpoint")
    layout = Layout(tmp_path, member_flags=extra)
    for member in layout.members:
        flags = layout.serve_flags(member)
        assert flags[-2:] == list(extra)
        assert flags[:-2] == Layout(tmp_path).serve_flags(member)


def test_each_member_serves_metrics_and_health_on_the_port_after_its_peer_port(
    cluster: Layout,
) -> None:
    eventually(lambda: agreed_leader(cluster), "agreed leader", cluster)
    for member in cluster.members:
        assert member.metrics_port == member.peer_port + 1
        with urllib.request.urlopen(f"{member.metrics_url}/metrics", timeout=10) as answer:
            assert "etcd_server_has_leader 1" in answer.read().decode()
        with urllib.request.urlopen(f"{member.metrics_url}/health", timeout=10) as answer:
            assert json.loads(answer.read()) == {"health": "true"}


def test_member_flags_reach_every_member_and_survive_a_restart(
    foreground: Callable[..., Foreground], tmp_path: Path
) -> None:
    root, base = tmp_path / "c", free_base_port(3)
    process = foreground(root, base, "--", "--quota-backend-bytes=1000000")
    process.wait_for("members serve")
    layout = require(root).layout
    assert layout.member_flags == ("--quota-backend-bytes=1000000",)

    def quotas() -> list[str]:
        found = []
        for member in layout.members:
            with urllib.request.urlopen(f"{member.metrics_url}/metrics", timeout=10) as answer:
                text = answer.read().decode()
            found += re.findall(r"^etcd_server_quota_backend_bytes (\S+)$", text, re.MULTILINE)
        return found

    assert quotas() == ["1e+06"] * 3
    control.stop(root, "n2")  # waits until it is gone, so its ports are free again
    control.restart(root, "n2")
    eventually(lambda: agreed_leader(layout), "agreed leader after the restart", layout)
    assert quotas() == ["1e+06"] * 3


@pytest.mark.parametrize(
    ("flag", "error"),
    [
        ("--no-such-flag=1", "'--no-such-flag=1' after -- is not a kv serve flag"),
        ("--name=mine", "--name is set by kv cluster for each member: it cannot be given"),
        ("--quota-backend-bytes", "give --quota-backend-bytes as --quota-backend-bytes=VALUE"),
    ],
)
def test_member_flags_kv_cannot_pass_are_refused_before_anything_starts(
    flag: str, error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "c"
    assert main(["cluster", "start", "--data-dir", str(root), "--", flag]) == 1
    assert capsys.readouterr().err.startswith(f"kv cluster: error: {error}")
    assert not root.exists()


@pytest.mark.parametrize("pre_vote", [False, True], ids=["pre-vote off", "pre-vote on"])
def test_a_follower_cut_off_and_healed_disrupts_the_leader_only_without_pre_vote(
    request: pytest.FixtureRequest, tmp_path: Path, pre_vote: bool
) -> None:
    """Chapter 3's heal stall, on real processes: cut off, a follower campaigns; without
    PreVote each campaign raises its term, and the leader that hears the raised term when the
    network heals steps down, for a new election. With PreVote the follower's term never
    moves, and the leader keeps leading at its term. (A member's Status reports the term of
    its last applied entry, as etcd's does, so the follower's own log tells its term.)"""
    layout = Layout(
        tmp_path / "cluster",
        base_port=free_base_port(3),
        heartbeat_interval=HEARTBEAT_MS,
        election_timeout=ELECTION_MS,
        pre_vote=pre_vote,
    )
    remember(request, layout)
    supervisor.start(layout)
    try:
        leader = eventually(lambda: agreed_leader(layout), "agreed leader", layout)
        term = one_status(layout, leader.name).term
        follower = next(member for member in layout.members if member != leader)
        log_start = follower.log_file.stat().st_size
        control.partition(layout.root, [follower.name])
        # Its election timeout passes without a word from the leader: it campaigns, at a
        # raised term without PreVote, at its own term with it (a pre-candidate).
        lost = re.compile(rb"lost leader at term (\d+)")
        campaign = eventually(
            lambda: lost.search(follower.log_file.read_bytes()[log_start:]),
            f"{follower.name} losing its leader",
            layout,
        )
        assert (int(campaign[1]) > term) is not pre_vote
        control.heal(layout.root)
        after = eventually(lambda: agreed_leader(layout), "one leader after healing", layout)
        healed_term = one_status(layout, after.name).term
        if pre_vote:
            assert (after, healed_term) == (leader, term)
        else:
            assert healed_term > term
    finally:
        state = load(layout.root)
        if state is not None:
            control.stop_members(state, hurry=lambda: True)


def test_partition_cuts_the_named_members_off_from_the_rest(tmp_path: Path) -> None:
    layout = Layout(tmp_path, size=5)
    ids = {member.name: member.member_id for member in layout.members}
    blocks = faults.plan(layout, ["n2", "n1"])
    assert sorted(blocks["n1"]) == sorted([ids["n3"], ids["n4"], ids["n5"]])
    assert sorted(blocks["n2"]) == sorted([ids["n3"], ids["n4"], ids["n5"]])
    assert all(
        sorted(blocks[name]) == sorted([ids["n1"], ids["n2"]]) for name in ("n3", "n4", "n5")
    )
    assert faults.plan(layout, []) == {name: [] for name in ids}
    assert faults.describe(layout, ["n1", "n2"]) == "n1 n2 | n3 n4 n5"
    with pytest.raises(ClusterError, match="two sides"):
        faults.plan(layout, list(ids))
    with pytest.raises(ClusterError, match="no member named 'n6'"):
        faults.plan(layout, ["n6"])


def test_restart_on_the_cut_off_side_keeps_the_partition(cluster: Layout) -> None:
    eventually(lambda: agreed_leader(cluster), "agreed leader", cluster)
    control.partition(cluster.root, ["n3"])
    message = control.restart(cluster.root, "n3")
    assert "without a quorum" in message
    # A restarted member's fault hook starts empty; restart applies the partition again.
    rows = {row.member.name: row for row in statuses(cluster)}
    assert set(rows["n3"].blocked or ()) == {
        cluster.member("n1").member_id,
        cluster.member("n2").member_id,
    }
    control.heal(cluster.root)
    eventually(lambda: agreed_leader(cluster), "one leader and term after healing", cluster)


# -- the foreground command and the control commands as a learner runs them --------------------


def test_foreground_start_survives_kills_and_ctrl_c_stops_every_member(
    foreground: Callable[..., Foreground], tmp_path: Path
) -> None:
    root = tmp_path / "kv-cluster"
    base = free_base_port(3)
    shell = foreground(root, base)
    endpoints = ",".join(f"{HOST}:{base + 10 * i}" for i in range(3))
    assert shell.wait_for("ETCDCTL_ENDPOINTS=").strip() == (
        f"export ETCDCTL_API=3 ETCDCTL_ENDPOINTS={endpoints}"
    )
    shell.wait_for("Ctrl-C here stops every member.")
    first = require(root).pids

    killed = run_kv("cluster", "kill", "n2", "--data-dir", str(root))
    assert killed.returncode == 0, killed.stderr
    shell.wait_for(f"n2 is down (pid {first['n2']}: killed by SIGKILL)")
    restarted = run_kv("cluster", "restart", "n2", "--data-dir", str(root))
    assert restarted.returncode == 0, restarted.stderr
    second = require(root).pids["n2"]
    assert second != first["n2"]
    shell.wait_for(f"n2 is up (pid {second})")

    # Ctrl-C: the foreground process stops every member, the one a control command restarted
    # (not its own child) included.
    assert shell.stop(signal.SIGINT) == 0
    assert shell.lines[-1] == "stopped n1 n2 n3" or shell.wait_for("stopped n1 n2 n3")
    for name, pid in [("n1", first["n1"]), ("n2", second), ("n3", first["n3"])]:
        assert processes.process_command(pid) is None, f"{name} (pid {pid}) still runs"
    assert leftover_members(root) == []
    gone = run_kv("cluster", "status", "--data-dir", str(root))
    assert gone.returncode == 1
    assert gone.stderr == (
        f"kv cluster: error: no cluster running in {root}: "
        f"start it with `kv cluster start --data-dir {root}`\n"
    )


@pytest.mark.etcd
def test_the_printed_etcdctl_commands_run_as_printed(
    foreground: Callable[..., Foreground], tmp_path: Path
) -> None:
    root = tmp_path / "kv-cluster"
    shell = foreground(root, free_base_port(3))
    shell.wait_for("Talk to it with etcdctl")
    assert shell.wait_for("") == ""
    printed = []
    while line := shell.wait_for(""):
        printed.append(line.split("#")[0].strip())
    layout = require(root).layout
    eventually(lambda: agreed_leader(layout), "agreed leader", layout)
    # As a reader pastes them, into a shell whose etcdctl variables were set by nobody else
    # (etcdctl refuses --endpoints while ETCDCTL_ENDPOINTS is set: none may need both).
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL")}
    env["PATH"] = os.pathsep.join([os.path.dirname(ETCDCTL_BINARY), env["PATH"]])
    done = subprocess.run(
        ["bash", "-e", "-c", "\n".join(printed)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    table_rows = [row for row in done.stdout.splitlines() if row.startswith("| 127.0.0.1:")]
    assert sorted(row.split()[1] for row in table_rows) == sorted(
        member.endpoint for member in layout.members
    )
    # put, get through any member, then the serializable get through one member alone
    assert done.stdout.splitlines()[-5:] == ["OK", "greeting", "hello", "greeting", "hello"]
    assert shell.stop(signal.SIGTERM) == 0


# -- refusals: one line, no traceback ---------------------------------------------------------


def test_ports_in_use_are_refused_in_one_line(tmp_path: Path) -> None:
    base = free_base_port(3)
    with socket.socket() as squatter:
        squatter.bind((HOST, base + 11))  # n2's peer port
        squatter.listen()
        result = run_kv(
            "cluster", "start", "--data-dir", str(tmp_path / "c"), "--base-port", str(base)
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"kv cluster: error: port {base + 11} (n2's peer port) is in use: "
        "choose another --base-port\n"
    )
    assert not (tmp_path / "c").exists()


NO_CLUSTER = (
    "no cluster in {root} (no cluster.json): start one with `kv cluster start --data-dir {root}`"
)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["status"],
            NO_CLUSTER,
        ),
        (
            ["kill", "n1"],
            NO_CLUSTER,
        ),
        (["start", "--size", "0"], "--size must be between 1 and 9, not 0"),
        (
            ["start", "--base-port", "65530"],
            "--base-port 65530 leaves no room for 3 members (they use ports 65530 to 65552)",
        ),
    ],
)
def test_refusals_without_a_cluster(
    args: list[str], error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "nothing"
    assert main(["cluster", *args, "--data-dir", str(root)]) == 1
    assert capsys.readouterr().err == f"kv cluster: error: {error.format(root=root)}\n"


def slow_fsyncs(member: LocalMember) -> int:
    """How many of ``member``'s WAL fsyncs took a second or more (its /metrics histogram)."""
    with urllib.request.urlopen(f"{member.metrics_url}/metrics", timeout=10) as answer:
        page = answer.read().decode()
    counts = {
        match[0]: int(float(match[1]))
        for match in re.findall(
            r'^etcd_disk_wal_fsync_duration_seconds_(bucket\{le="1.024"\}|count) (\S+)$',
            page,
            re.MULTILINE,
        )
    }
    return counts["count"] - counts['bucket{le="1.024"}']


def test_a_slow_disk_slows_one_members_fsyncs_until_it_is_healed(cluster: Layout) -> None:
    leader = eventually(lambda: agreed_leader(cluster), "agreed leader", cluster)
    slow = next(member for member in cluster.members if member != leader)  # a follower
    assert control.slow_disk(cluster.root, slow.name, "1100ms") == (
        f"{slow.name}: each fsync of its WAL now takes 1100ms longer"
    )
    put(leader, b"slow", b"1")  # the leader and the other follower make the quorum
    eventually(lambda: slow_fsyncs(slow) >= 1 or None, "a slow fsync on the slowed member", cluster)
    log = slow.log_file.read_text()
    assert re.search(r"W \| .*sync duration of 1\.1\d*s, expected less than 1s", log), log
    assert all(slow_fsyncs(member) == 0 for member in cluster.members if member != slow)

    healed = control.slow_disk(cluster.root, slow.name, "0")
    assert healed == f"{slow.name}: its disk is healthy again"
    before = slow_fsyncs(slow)
    for n in range(3):
        put(leader, b"fast", str(n).encode())
    eventually(lambda: linearizable_get(slow, b"fast") == b"2" or None, "caught up", cluster)
    assert slow_fsyncs(slow) == before


def test_refusals_with_a_cluster(cluster: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(cluster.root)
    cases = [
        (["kill", "n4"], "no member named 'n4' in this cluster (its members: n1, n2, n3)"),
        (["slow-disk", "n1", "fast"], 'slow-disk: time: invalid duration "fast"'),
        (
            ["partition", "n1", "n2", "n3"],
            "name some members, not all of them: a partition needs two sides",
        ),
        (
            ["start", "--base-port", str(cluster.base_port)],
            f"a cluster is already running in {root} (",
        ),
    ]
    for args, error in cases:
        assert main(["cluster", *args, "--data-dir", root]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"kv cluster: error: {error}") and err.count("\n") == 1, err
    assert main(["cluster", "slow-disk", "--data-dir", root, "n1", "--", "-1s"]) == 1
    negative = "kv cluster: error: slow-disk: the delay cannot be negative: -1s\n"
    assert capsys.readouterr().err == negative
    control.stop(cluster.root, "n2")
    assert main(["cluster", "kill", "n2", "--data-dir", root]) == 1
    assert capsys.readouterr().err == (
        "kv cluster: error: n2 is not running: `kv cluster restart n2` starts it\n"
    )
