"""The real-process Try its of chapters 3 to 5, run as printed with the real etcdctl.

* Chapter 4's three members, started with its three ``kv serve`` commands: one leader, a put
  through one member read through another, the two kinds of reads parting ways on a member
  left alone, and the raised term after the others return.
* Chapter 5 on from there: a learner added and started with etcdctl's flags, refused a
  linearizable read as etcd refuses it, promoted, made leader; n1 removed and gone; another
  learner refused while a member is down.
* Chapter 3's heal stall on ``kv cluster``: a follower cut off and healed raises the term
  without PreVote and changes nothing with ``--pre-vote``.

The commands come from the chapters' ``sh`` blocks (`tests.docs.shell`); only the ports (to a
free range, the same offsets from it), the data directories and the member a block names
"yours may differ" are replaced. Every etcdctl command names its endpoints: one that did not
would talk to 2379, where the reader's own ``kv serve`` may be listening.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import free_base_port
from tests.docs.shell import Reader, sh_blocks

pytestmark = pytest.mark.etcd

#: Chapters 4 and 5 run members n1..n5 on 127.0.0.1:12379 to 12420.
CHAPTER_PORTS = range(12379, 12421)
#: A member of chapter 4's cluster logs this once it serves (etcd's words).
READY = "ready to serve client requests"
#: etcd's strict checks look at the last five seconds (``HealthInterval``): the chapter waits
#: that long before a membership change, and before a member counts as down.
STRICT_CHECK_WAIT = 5.0

CHAPTER_4 = sh_blocks("04-log-replication", "### Try it: a three-member cluster")
CHAPTER_5 = sh_blocks(
    "05-persistence-snapshots-membership",
    "### Try it: a learner joins, is promoted, takes over; a member leaves",
)
CHAPTER_3 = sh_blocks("03-leader-election", "### The same heal stall on real processes")


def cluster_reader(tmp_path: Path, base: int) -> Reader:
    """Chapter 4 and 5's commands on ports from ``base``, data directories under ``tmp_path``."""
    ports = {f"127.0.0.1:{port}": f"127.0.0.1:{base + port - 12379}" for port in CHAPTER_PORTS}
    return Reader(tmp_path, {**ports, "/tmp/kv-n": f"{tmp_path}/kv-n"})


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    session = cluster_reader(tmp_path, free_base_port(5))
    yield session
    session.stop_all()


def tables(output: str) -> list[list[dict[str, str]]]:
    """Every table etcdctl printed with ``-w table``, as rows by column name. A table is
    three border lines (``+--``): above the header, below it, and below the last row."""
    found: list[list[list[str]]] = []
    borders = 3
    for line in output.splitlines():
        if line.startswith("+"):
            if borders == 3:
                found.append([])
                borders = 0
            borders += 1
        elif line.startswith("|") and found:
            found[-1].append([cell.strip() for cell in line.strip("|").split("|")])
    return [[dict(zip(t[0], row, strict=True)) for row in t[1:]] for t in found if t]


def endpoint(row: dict[str, str]) -> str:
    """A status row's endpoint as the chapter's commands name it (``--cluster`` adds http://)."""
    return row["ENDPOINT"].removeprefix("http://")


def leader_endpoint(reader: Reader, endpoint: str) -> str:
    """The client endpoint of the leader every member names, at the same term (waiting for
    them to agree: a member reports the term of the last entry it applied)."""
    deadline = time.monotonic() + 20
    while True:
        code, output = reader.run(
            f"etcdctl --endpoints={endpoint} endpoint status --cluster -w json"
        )
        statuses = json.loads(output) if code == 0 else []
        agreed = {(s["Status"].get("leader", 0), s["Status"]["raftTerm"]) for s in statuses}
        if len(agreed) == 1 and 0 not in next(iter(agreed)):
            ((leader, _),) = agreed
            for status in statuses:
                if status["Status"]["header"]["member_id"] == leader:
                    return str(status["Endpoint"]).removeprefix("http://")
        assert time.monotonic() < deadline, f"no agreed leader:\n{output}"
        time.sleep(0.2)  # polling interval only


def start_members(reader: Reader, blocks: dict[str, str]) -> None:
    for name, command in blocks.items():
        reader.start(name, command)
    for name in blocks:
        reader.wait_for_line(name, READY)


def test_chapter_four_and_five_try_it_run_as_printed(reader: Reader) -> None:
    n1, n2, n3, n4 = reader.adapt(
        "127.0.0.1:12379 127.0.0.1:12389 127.0.0.1:12399 127.0.0.1:12409"
    ).split()
    serve = dict(zip(["n1", "n2", "n3"], CHAPTER_4[:3], strict=True))
    status, put_get, alone = CHAPTER_4[3:6]

    # Chapter 4: three members, one leader, one term.
    start_members(reader, serve)
    leader_endpoint(reader, n1)
    code, output = reader.run(status)
    assert code == 0, output
    rows, members = tables(output)
    assert {endpoint(row) for row in rows} == {n1, n2, n3}, output
    assert sum(row["IS LEADER"] == "true" for row in rows) == 1, output
    assert len({row["RAFT TERM"] for row in rows}) == 1, output
    term = int(rows[0]["RAFT TERM"])
    assert sorted(row["NAME"] for row in members) == ["n1", "n2", "n3"], output

    # A put through n2, read through n3 both ways.
    code, output = reader.run(put_get)
    assert code == 0, output
    put = json.loads(next(line for line in output.splitlines() if line.startswith('{"header"')))
    n2_id = next(row["ID"] for row in rows if endpoint(row) == n2)
    assert f"{put['header']['member_id']:x}" == n2_id, output
    assert put["header"]["revision"] == 2, output
    assert output.count("greeting\nhello\n") == 2, output

    # n2 and n3 stopped: n1 alone serves serializable reads only.
    reader.stop("n2")
    reader.stop("n3")
    code, output = reader.run(alone)
    assert "greeting\nhello\n" in output, output
    assert output.count("Error: context deadline exceeded") == 2, output
    assert "etcdserver: no leader" in output, output

    # Back with the same commands: the three agree again, at n1's raised term.
    start_members(reader, {"n2": serve["n2"], "n3": serve["n3"]})
    leader = leader_endpoint(reader, n1)
    rows = tables(reader.run(status)[1])[0]
    assert all(int(row["RAFT TERM"]) > term for row in rows), rows

    # Chapter 5: a learner joins (membership calls go to the leader), once the members have
    # been connected for the five seconds etcd's strict check wants.
    time.sleep(STRICT_CHECK_WAIT)  # the chapter's "all running for five seconds at least"
    add, serve_n4, learner_reads, take_over, strict = CHAPTER_5
    assert "\nLEADER=127.0.0.1:12399" in add
    add = re.sub(r"^LEADER=\S+", f"LEADER={leader}", add, flags=re.MULTILINE)
    code, output = reader.run(add)
    assert code == 0, output
    # etcdctl prints the id with %16x: an id below 2^60 is padded with spaces, not zeros.
    assert re.search(r"Member +[0-9a-f]+ added to cluster +[0-9a-f]+", output), output
    assert 'ETCD_NAME="n4"' in output and 'ETCD_INITIAL_CLUSTER_STATE="existing"' in output

    start_members(reader, {"n4": serve_n4})
    assert "joining cluster" in reader.output("n4")
    code, output = reader.run(learner_reads)
    assert code == 1, output  # the linearizable read, refused
    learners = {endpoint(row) for row in tables(output)[0] if row["IS LEARNER"] == "true"}
    assert learners == {n4}, output
    assert "greeting\nhello\n" in output, output
    assert '"attempt":99' in output, output  # etcdctl retried UNAVAILABLE a hundred times
    assert output.rstrip().endswith("Error: etcdserver: rpc not supported for learner"), output

    # Promoted, made leader; n1 removed, and it stops by itself.
    code, output = reader.run(take_over)
    assert code == 0, output
    assert "promoted" in output and "Leadership transferred from" in output, output
    assert re.search(r"Member +[0-9a-f]+ removed from cluster", output), output
    rows = tables(output)[-1]
    assert {endpoint(row) for row in rows} == {n2, n3, n4}, output
    assert [endpoint(row) for row in rows if row["IS LEADER"] == "true"] == [n4], output
    assert reader.exited("n1", timeout=15), reader.output("n1")

    # n2 down for five seconds: etcd's strict check refuses another member.
    reader.stop("n2")
    time.sleep(STRICT_CHECK_WAIT)  # the chapter's "wait five seconds"
    code, output = reader.run(strict)
    assert "Error: etcdserver: unhealthy cluster" in output, output


def cluster_status(reader: Reader) -> list[dict[str, str]]:
    """``kv cluster status``'s rows once every member names the same leader at the same term
    (a member shows a new term once it has applied the new leader's first entry)."""
    deadline = time.monotonic() + 20
    while True:
        code, output = reader.run("python3 -m kv cluster status")
        rows = status_rows(output)
        agreed = {(row["LEADER"], row["TERM"]) for row in rows}
        if code == 0 and len(agreed) == 1 and rows[0]["LEADER"] not in ("none", ""):
            return rows
        assert time.monotonic() < deadline, f"the cluster never agreed on a leader:\n{output}"
        time.sleep(0.2)  # polling interval only


def status_rows(output: str) -> list[dict[str, str]]:
    """The rows of the last table ``kv cluster status`` printed in ``output``, cut at the
    header's columns (a member that does not answer leaves its LEADER, TERM, INDEX blank)."""
    lines = output.splitlines()
    header_at = max(i for i, line in enumerate(lines) if line.startswith("NAME "))
    header = lines[header_at]
    starts = [match.start() for match in re.finditer(r"(?<!\S)\S+(?: [A-Z]+)*", header)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    rows = []
    for line in lines[header_at + 1 :]:
        if not line.startswith("n"):
            break
        rows.append({header[a:b].strip(): line[a:b].strip() for a, b in bounds})
    return rows


def terms(rows: list[dict[str, str]]) -> list[int]:
    """The terms of the members that answered."""
    return [int(row["TERM"]) for row in rows if row["TERM"]]


@pytest.mark.parametrize("pre_vote", [False, True], ids=["pre-vote off", "pre-vote on"])
def test_chapter_three_heal_stall_on_real_processes_as_printed(
    tmp_path: Path, pre_vote: bool
) -> None:
    start_off, partition_heal, start_on = CHAPTER_3
    start = start_on if pre_vote else start_off
    assert start.strip().startswith("python3 -m kv cluster start --fresh")
    base = free_base_port(3)
    reader = Reader(
        tmp_path, {"cluster start --fresh": f"cluster start --fresh --base-port {base}"}
    )
    try:
        reader.start("kv cluster", start)
        reader.wait_for_line("kv cluster", "members serve")
        before = cluster_status(reader)
        follower = next(row["NAME"] for row in before if row["STATE"] == "follower")
        assert "partition n1\n" in partition_heal
        code, output = reader.run(
            partition_heal.replace("partition n1\n", f"partition {follower}\n")
        )
        assert code == 0, output
        healed = status_rows(output)
        after = cluster_status(reader)
        term = int(before[0]["TERM"])
        if pre_vote:  # the cut-off follower asked only for pre-votes: nothing changed
            assert terms(healed) and set(terms(healed)) == {term}, output
            assert [(row["LEADER"], row["TERM"]) for row in after] == [
                (before[0]["LEADER"], str(term))
            ] * 3, (before, after)
        else:  # its raised term deposes the leader: an election, then a new term everywhere
            deposed = any(row["LEADER"] == "none" for row in healed)
            assert deposed or max(terms(healed)) > term, output
            assert int(after[0]["TERM"]) > term, (before, after)
    finally:
        reader.stop_all()
        reader.run("python3 -m kv cluster stop")  # members left if the foreground died
