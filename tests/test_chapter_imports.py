"""Chapter N's code imports only what chapters 1..N introduced (DEVELOPERS.md's rule).

Every ``chapters/NN-*/**/*.py`` -- tests, conftests, demos -- is parsed with `ast`, and each
``kv`` module it imports must be introduced by chapter NN or an earlier one. Imports through
a test-infrastructure module in ``tests/`` (``from tests.raftnet import Network``) are allowed,
and what that module imports from ``kv`` counts as imported by the chapter: a helper cannot
smuggle a later chapter's module in. A name imported from a package (``from kv.raft import
ReadOnlyOption``) counts as the module the package re-exports it from (`kv.raft.read_only`).

Which chapter introduces a module is an explicit table, `INTRODUCED_IN`, and not read from the
modules' docstrings: those are prose for readers and do not say it uniformly (most of
`kv.raft` and `kv.sim` name no chapter, the `kv.raft` package says "chapters 3-5", and
`kv/server/requests/server.py` "chapters 1, 2, 4 and 5", because a module may grow over
chapters). The table says one chapter per module, the chapter whose tests may first import it, and
`test_every_kv_module_has_a_chapter` fails as soon as a module is added, moved or renamed
without an entry, so the table cannot silently fall behind the tree.

How a module finds its entry:

* by its dotted name (``kv.raft.read_only``);
* generated protobuf code by its package (`GENERATED`: ``kv.api.raftpb`` covers
  ``kv.api.raftpb.raft_pb2``);
* a module under ``kv.server`` also by its last name, whatever folder it sits in
  (``kv.server.member.replica`` finds ``kv.server.replica``), so the server's modules may move
  into layer folders without touching this table; only a new or renamed module needs a row;
* a package (an ``__init__.py``) without an entry: the earliest chapter among its modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"

#: Generated code (``python -m kv.api.generate``): the chapter that first speaks each package.
#: etcd's client API is chapter 1's whole (the RPCs a later chapter serves answer UNIMPLEMENTED
#: until then); the WAL's records are chapter 2's, the peer service chapter 4's, the
#: membership messages chapter 5's.
GENERATED: dict[str, int] = {
    "kv.api.etcdserverpb": 1,
    "kv.api.mvccpb": 1,
    "kv.api.authpb": 1,
    "kv.api.v3lockpb": 1,
    "kv.api.v3electionpb": 1,
    "kv.api.raftpb": 2,
    "kv.api.walpb": 2,
    "kv.api.leasepb": 2,
    "kv.api.peerpb": 4,
    "kv.api.membershippb": 5,
}

#: Every hand-written module of kv, with the chapter that introduces it.
INTRODUCED_IN: dict[str, int] = {
    # Chapter 1: the MVCC store, the server answering etcd's API, the client and the command.
    "kv.__main__": 1,
    "kv.cli.command": 1,
    "kv.cli.environment": 1,
    "kv.cli.flags": 1,
    "kv.cli.logs": 1,
    "kv.cli.serve": 1,
    "kv.client.keys": 1,
    "kv.client.kv_client": 1,
    "kv.membership": 1,
    "kv.api.generate": 1,
    "kv.mvcc.errors": 1,
    "kv.mvcc.hash": 1,
    "kv.mvcc.key_index": 1,
    "kv.mvcc.revision": 1,
    "kv.mvcc.store": 1,
    "kv.mvcc.tree_index": 1,
    "kv.server.app": 1,
    "kv.server.cycle_collector": 1,
    "kv.server.apply": 1,
    "kv.server.config": 1,
    "kv.server.errors": 1,
    "kv.server.flag_values": 1,
    "kv.server.server": 1,
    "kv.server.services": 1,
    "kv.server.unimplemented": 1,
    "kv.cli.docs": 1,
    "kv.server.validate": 1,
    # Chapter 2: durability.
    "kv.backend.backend": 2,
    "kv.backend.errors": 2,
    "kv.backend.history": 2,
    "kv.backend.schema": 2,
    "kv.backend.snapshot_copy": 2,
    "kv.backend.summary": 2,
    "kv.bbolt": 2,
    "kv.bbolt.page": 2,
    "kv.bbolt.reader": 2,
    "kv.bbolt.writer": 2,
    "kv.fsutil": 2,
    "kv.snap": 2,
    "kv.wal.errors": 2,
    "kv.wal.record": 2,
    "kv.wal.replay": 2,
    "kv.wal.segments": 2,
    "kv.wal.wal": 2,
    "kv.server.alarms": 2,
    "kv.server.applied_state": 2,
    "kv.server.cached_history": 2,
    "kv.server.data_dir": 2,
    "kv.server.fsync_thread": 2,
    "kv.server.quota": 2,
    "kv.server.snapshot_file": 2,
    "kv.server.etcd_db": 2,
    "kv.server.state_machine": 2,
    "kv.cli.snapshot": 2,
    # Chapter 3: the Raft core arrives whole (its Files list), run on the simulator.
    "kv.raft.config": 3,
    "kv.raft.errors": 3,
    "kv.raft.events": 3,
    "kv.raft.follower": 3,
    "kv.raft.leader": 3,
    "kv.raft.log": 3,
    "kv.raft.messages": 3,
    "kv.raft.node": 3,
    "kv.raft.quorum": 3,
    "kv.raft.raft": 3,
    "kv.raft.roles": 3,
    "kv.raft.storage": 3,
    "kv.raft.tracker": 3,
    "kv.sim.config": 3,
    "kv.sim.timeline.events": 3,
    "kv.sim.timeline.tasks": 3,
    "kv.sim.timeline.cluster": 3,
    "kv.sim.timeline.control": 3,
    "kv.sim.node.node": 3,
    "kv.sim.node.pending": 3,
    "kv.sim.node.state_codec": 3,
    "kv.sim.node.view": 3,
    "kv.sim.faults.network": 3,
    "kv.sim.faults.injection": 3,
    "kv.sim.faults.scenario": 3,
    "kv.sim.clients.traffic": 3,  # the cluster's clock carries requests; the clients are 4's
    # Chapter 4: replication -- flow control, ReadIndex, the log's unstable tail, clients and
    # their histories, the linearizability checker, the real cluster.
    "kv.raft.progress": 4,
    "kv.raft.read_only": 4,
    "kv.raft.unstable": 4,
    "kv.sim.__main__": 4,
    "kv.sim.clients.client": 4,
    "kv.sim.safety": 4,
    "kv.sim.clients.workload": 4,
    "kv.linearizability.checker": 4,
    "kv.linearizability.history": 4,
    "kv.linearizability.model": 4,
    "kv.cluster.command": 4,
    "kv.cluster.control": 4,
    "kv.cluster.faults": 4,
    "kv.cluster.layout": 4,
    "kv.cluster.processes": 4,
    "kv.cluster.state": 4,
    "kv.cluster.status": 4,
    "kv.cluster.supervisor": 4,
    "kv.server.transport": 4,
    "kv.server.peer_service": 4,
    "kv.server.frames": 4,
    "kv.server.inbound": 4,
    "kv.server.outbound": 4,
    "kv.server.raft_wire": 4,
    "kv.server.wire_bytes": 4,
    "kv.server.proposals": 4,
    "kv.server.reads": 4,
    "kv.server.replica": 4,
    "kv.server.batching": 4,
    "kv.server.pacing": 4,
    "kv.server.outbox": 4,
    "kv.server.space": 4,
    "kv.server.timing": 4,
    "kv.server.waiters": 4,
    # Chapter 5: persistence, snapshots, membership.
    "kv.raft.conf_change": 5,
    "kv.sim.membership.operator": 5,
    "kv.sim.membership.steps": 5,
    "kv.server.bootstrap": 5,
    "kv.server.duties": 5,
    "kv.server.members": 5,
    "kv.server.raft_disk": 5,
    "kv.server.reconfigure": 5,
    "kv.server.snapshots": 5,
    # Chapter 6: transactions.
    "kv.server.txn": 6,
    "kv.client.txn": 6,
    "kv.linearizability.txn": 6,
    # Chapter 7: leases.
    "kv.lease": 7,
    "kv.lease.errors": 7,
    "kv.lease.lease": 7,
    "kv.lease.lessor": 7,
    "kv.lease.checkpoint": 7,
    "kv.client.keep_alive": 7,
    "kv.lease.schedule": 7,
    "kv.lease.expiry": 7,
    "kv.sim.leases.expiry": 7,
    "kv.sim.leases.keepalive": 7,
    "kv.sim.leases.safety": 7,
    "kv.server.leases": 7,  # applied/leases.py and requests/leases.py
    "kv.server.expiry": 7,
    "kv.linearizability.leases": 7,
    # Chapter 8: watches.
    "kv.watch.events": 8,
    "kv.watch.stream": 8,
    "kv.watch.hub": 8,
    "kv.client.watch": 8,
    "kv.server.watch_service": 8,
    "kv.sim.clients.watchers": 8,
    # Chapter 9: what etcd is for -- the recipes, and the Lock and Election services.
    "kv.recipes.election": 9,
    "kv.recipes.errors": 9,
    "kv.recipes.mutex": 9,
    "kv.recipes.queue": 9,
    "kv.recipes.session": 9,
    "kv.server.lock_election": 9,
    "kv.recipes.configuration": 9,
    "kv.recipes.discovery": 9,
    # Chapter 10: running kv.
    "kv.cli.flags_table": 10,
    "kv.server.auto_compaction": 10,
    "kv.server.metrics": 10,
    "kv.server.families": 10,
    "kv.server.histogram": 10,
    "kv.server.grpc_metrics": 10,
    "kv.server.collector": 10,
    "kv.server.exposition": 10,
    "kv.server.http": 10,
    "kv.server.health": 10,
    "kv.server.routes": 10,
    "kv.server.listener": 10,
    "kv.server.front": 10,
}

#: Modules found by their last name wherever they sit below this package (see above).
MOVABLE = "kv.server."


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def kv_modules() -> Mapping[str, Path]:
    """Every module and package of kv, by dotted name."""
    return {dotted(path): path for path in sorted((ROOT / "kv").rglob("*.py"))}


def entry_of(name: str) -> int | None:
    """The chapter the table gives ``name``, or None if no entry covers it."""
    if name in INTRODUCED_IN:
        return INTRODUCED_IN[name]
    for package, chapter in GENERATED.items():
        if name == package or name.startswith(package + "."):
            return chapter
    if name.startswith(MOVABLE):
        return INTRODUCED_IN.get(MOVABLE + name.rpartition(".")[2])
    return None


def chapter_of(name: str) -> int | None:
    """The chapter that introduces kv module ``name`` (None: unknown to the table)."""
    chapter = entry_of(name)
    path = kv_modules().get(name)
    if chapter is None and path is not None and path.name == "__init__.py":
        below = [chapter_of(m) for m in kv_modules() if m.startswith(name + ".")]
        known = [c for c in below if c is not None]
        chapter = min(known) if known else None
    return chapter


@cache
def reexports(package: str) -> Mapping[str, tuple[str, str]]:
    """The names a package's ``__init__`` imports: alias -> (module, name there)."""
    path = kv_modules().get(package)
    if path is None or path.name != "__init__.py":
        return {}
    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def resolve(module: str, name: str) -> str:
    """The module that ``from module import name`` really takes ``name`` from."""
    if f"{module}.{name}" in kv_modules():
        return f"{module}.{name}"
    origin = reexports(module).get(name)
    if origin is not None and origin[0] != module:
        return resolve(*origin)
    return module


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import in ``tree``, names resolved to modules."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if node.module.split(".")[0] == "kv":
                    yield node.lineno, resolve(node.module, alias.name)
                else:
                    yield node.lineno, f"{node.module}.{alias.name}"


def infrastructure_file(module: str) -> Path | None:
    """The file of a ``tests.*`` module (or of a module it imports a name from)."""
    parts = module.split(".")
    while parts and parts[0] == "tests":
        for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts)):
            if candidate.is_file():
                return candidate
            if (candidate / "__init__.py").is_file():
                return candidate / "__init__.py"
        parts.pop()
    return None


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def kv_imports(
    tree: ast.AST, where: str, through: str = "", seen: frozenset[Path] = frozenset()
) -> Iterator[tuple[str, str]]:
    """(module, where it is imported) for each kv module imported by ``tree``, directly or
    through test infrastructure."""
    for line, module in imported(tree):
        place = through or f"{where}:{line}"
        if module.split(".")[0] == "kv":
            yield module, place
        elif module.split(".")[0] == "tests":
            helper = infrastructure_file(module)
            if helper is not None and helper not in seen:
                helper_name = str(helper.relative_to(ROOT))
                via = through or f"{where}:{line} (through {helper_name})"
                yield from kv_imports(parse(helper), helper_name, via, seen | {helper})


def violations(tree: ast.AST, where: str, chapter: int) -> list[str]:
    found = []
    for module, place in kv_imports(tree, where):
        introduced = chapter_of(module)
        if introduced is None:
            found.append(f"{place} imports {module}, which no chapter introduces (add a row)")
        elif introduced > chapter:
            found.append(f"{place} imports {module}, introduced in chapter {introduced}")
    return list(dict.fromkeys(found))  # several names from one module on one line: once


def chapter_number(path: Path) -> int:
    return int(path.relative_to(CHAPTERS).parts[0].split("-")[0])


CHAPTER_FILES = sorted(CHAPTERS.glob("[0-9][0-9]-*/**/*.py"))


def test_there_are_chapter_files_to_check() -> None:
    assert len({chapter_number(path) for path in CHAPTER_FILES}) >= 5


def test_every_kv_module_has_a_chapter() -> None:
    missing = [name for name in kv_modules() if chapter_of(name) is None]
    assert not missing, f"add these modules to INTRODUCED_IN: {missing}"


def test_every_entry_names_a_module_that_exists() -> None:
    names = set(kv_modules())
    lasts = {name.rpartition(".")[2] for name in names if name.startswith(MOVABLE)}
    stale = [
        entry
        for entry in [*INTRODUCED_IN, *GENERATED]
        if entry not in names
        and not (entry.startswith(MOVABLE) and entry.rpartition(".")[2] in lasts)
    ]
    assert not stale, f"these entries name no module of kv: {stale}"


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda path: str(path.relative_to(CHAPTERS)))
def test_a_chapter_imports_only_modules_of_its_own_or_earlier_chapters(path: Path) -> None:
    found = violations(parse(path), str(path.relative_to(ROOT)), chapter_number(path))
    assert not found, f"chapter {chapter_number(path)} may not import a later chapter's " + (
        "module: " + "; ".join(found)
    )


# The check itself, on made-up files: it must catch what it is meant to catch.


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from kv.raft.progress import Progress", "kv.raft.progress"),
        ("from kv.raft import ReadOnlyOption", "kv.raft.read_only"),
        ("import kv.linearizability", "kv.linearizability"),
        ("from kv.sim import Client", "kv.sim.clients.client"),
        ("from kv import linearizability", "kv.linearizability"),
    ],
)
def test_the_check_catches_a_later_chapters_module(source: str, caught: str) -> None:
    found = violations(ast.parse(source), "made-up.py", chapter=3)
    assert len(found) == 1 and f"imports {caught}, introduced in chapter 4" in found[0], found


def test_the_check_catches_a_module_no_chapter_introduced() -> None:
    found = violations(ast.parse("import kv.nothing_here"), "made-up.py", chapter=5)
    assert len(found) == 1 and "no chapter introduces" in found[0], found


def test_the_check_allows_what_earlier_chapters_introduced() -> None:
    assert chapter_of("kv.raft") == 3
    assert resolve("kv.raft", "MessageType") == "kv.raft.messages"
    assert resolve("kv.raft", "events") == "kv.raft.events"
    assert chapter_of("kv.mvcc") == 1


def test_the_check_follows_test_infrastructure() -> None:
    assert infrastructure_file("tests.raftnet.Network") == ROOT / "tests" / "raftnet.py"
    found = list(kv_imports(ast.parse("from tests.raftnet import Network"), "made-up.py"))
    assert found, "tests.raftnet's own kv imports were not followed"
    assert all(module.startswith("kv.raft") for module, _ in found), found
    assert all("(through tests/raftnet.py)" in place for _, place in found), found


def test_a_server_module_keeps_its_chapter_in_a_layer_folder() -> None:
    assert chapter_of("kv.server.member.replica") == chapter_of("kv.server.replica") == 4
