"""Chapter 9's Try it, run as printed with the real etcdctl against ``kv cluster``: two lock
holders one after the other with growing revisions, a killed holder whose lock is free only
once its lease expired; an election passing from n1 to n2 when n1 resigns, seen by an observer;
a service instance whose key goes when its keep-alives stop.

The commands come from the chapter's ``sh`` blocks (`tests.docs.shell`); only the cluster's
ports are replaced, by free ones at the same offsets (``kv cluster start --base-port``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import free_base_port
from tests.docs.shell import Reader, sh_blocks

pytestmark = pytest.mark.etcd

DEMO, START, LOCKS, ELECTION, SERVICE = sh_blocks("09-what-etcd-is-for", "## Try it")
#: The chapter's members listen for clients at 12379, 12389 and 12399.
CHAPTER_BASE = 12379
HOLDER = re.compile(r"^(first|next): (printer/[0-9a-f]+), token (\d+)$", re.MULTILINE)
#: The dead holder lived about a second; its lease (TTL 5 s) must outlive it by more than
#: the rest of its TTL less a second of rounding.
DEAD_HOLDER_TTL = 5
REAL = re.compile(r"^real\t(\d+)m([\d.]+)s$", re.MULTILINE)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    """The chapter's cluster, started as printed on free ports, for the module's tests."""
    assert DEMO.strip() == "python3 chapters/09-what-etcd-is-for/demo.py"
    assert START.strip() == "python3 -m kv cluster start --fresh"
    base = free_base_port(3)
    ports = {
        f"127.0.0.1:{CHAPTER_BASE + offset}": f"127.0.0.1:{base + offset}" for offset in (0, 10, 20)
    }
    workdir: Path = tmp_path_factory.mktemp("chapter9")
    session = Reader(
        workdir, {"cluster start --fresh": f"cluster start --fresh --base-port {base}", **ports}
    )
    try:
        session.start("kv cluster", START)
        session.wait_for_line("kv cluster", "members serve")
        yield session
    finally:
        session.stop_all()
        session.run("python3 -m kv cluster stop")  # members left if the foreground died


def test_lock_holders_take_turns_and_a_killed_one_holds_on_until_its_lease_expires(
    reader: Reader,
) -> None:
    code, output = reader.run(LOCKS)
    assert code == 0, output
    holders = HOLDER.findall(output)
    assert [who for who, _, _ in holders] == ["first", "next"], output
    (_, first_key, first_rev), (_, next_key, next_rev) = holders
    assert first_key != next_key and int(next_rev) > int(first_rev), output
    assert "mine, once the dead holder's lease expired" in output
    waited = REAL.search(output)
    assert waited is not None, output
    seconds = 60 * int(waited.group(1)) + float(waited.group(2))
    assert seconds >= DEAD_HOLDER_TTL - 2, output  # killed after 1 s; 1 s of TTL rounding


def test_the_election_passes_to_the_next_candidate_when_the_leader_resigns(
    reader: Reader,
) -> None:
    code, output = reader.run(ELECTION)
    assert code == 0, output
    lines = output.splitlines()
    # Each leader twice (the observer, the winner), n1's before n2's.
    assert [line for line in lines if line in ("n1", "n2")] == ["n1", "n1", "n2", "n2"], output


def test_a_service_instance_leaves_the_watched_prefix_when_its_keep_alives_stop(
    reader: Reader,
) -> None:
    code, output = reader.run(SERVICE)
    assert code == 0, output
    put = output.index("PUT\n/services/web/web-1\n10.0.0.7:8080\n")
    assert "keepalived with TTL(5)" in output, output
    deleted = output.index("DELETE\n/services/web/web-1\n")
    assert deleted > put
    assert output[deleted:].strip() == "DELETE\n/services/web/web-1", output  # get: nothing
