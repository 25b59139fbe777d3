"""Three-member clusters side by side: the real etcd 3.4 and kv, the same etcdctl calls.

Two clusters are started once for the module (`ProcessCluster`, members ``n1``..``n3``, the
same flags, fast timers): the reference (etcd) and the subject (kv, or a second etcd with
``KV_COMPAT_SUBJECT=etcd``). Each test runs the same etcdctl (``-w json`` unless the text is
the point) or `KVClient` steps on both, normalises both outputs and requires them equal; the
assertions after the comparison state what etcd answers (see ``CLUSTER-FACTS.md``). Tests that
change the membership put it back (`pair` removes any member a test added); membership tests
first make ``n1`` the leader on both sides, so that the same member answers. The quorum-loss
tests get a second pair of clusters of their own (two members SIGKILLed), class-scoped.

Where kv differs, the test keeps etcd's behaviour and is marked `kv_differs` (a strict xfail
with the difference in its reason) until kv is fixed.

What the normaliser rewrites, in full (everything else is compared as etcd printed it):

1. **Member IDs** (``ID``, ``member_id``, ``memberID``, ``leader`` and etcdctl's hex in text)
   become ``<id:LABEL>`` only when they equal the ID etcd derives: SHA-1 of the peer URL and
   the cluster token for an initial member, or -- for a member a test added -- SHA-1 of its
   peer URLs and the Unix second of the call, for a second between just before and just after
   the call (etcd's ``NewMember`` with a time). Any other ID stays raw, so a wrong one shows.
   etcdctl prints IDs with ``%16x``: the spaces that pad a shorter one go with it.
   ``cluster_id`` becomes ``<cluster_id>`` when it is SHA-1 of the three initial member IDs.
   LABEL is the member's name (``n1``), or its role (``leader``, ``follower1``, ``follower2``,
   followers by name) in tests about leadership: which member wins an election is random.
2. **Addresses**: ``[http://]127.0.0.1:PORT`` of a member's client or peer port becomes
   ``<LABEL-client-url>``, ``<LABEL-peer-endpoint>`` and so on (the ports are random).
3. **Order of members.** etcd lists members (``member list``, MemberAdd's members,
   ``ETCD_INITIAL_CLUSTER``, ``endpoint status --cluster``) by ID ascending. IDs are hashes of
   random ports, so the two clusters' orders differ. Each list is checked to be in raw-ID order
   (else it is wrapped in a visible ``<NOT IN ID ORDER>`` marker), then sorted by label.
   ``endpoint health --cluster`` prints in completion order: sorted by endpoint. Members get
   peer ports whose IDs print as 16 hex digits, not starting with ``f`` (`ports_for`), so
   that sorting by number and as hex text agree, except in the one test that adds a member
   whose ID has 15 digits on purpose (`test_members_are_ordered_by_id_as_a_number`).
4. **Raft term and index**: ``raft_term``/``raftTerm`` become ``<raft_term>``, and
   ``raftIndex``/``raftAppliedIndex`` (with ``version``, ``dbSize``, ``dbSizeInUse``) are
   checked for type only, as in ``normalise.py``: elections and a backend's size are not API.
   What must hold of them is compared separately, from the raw values: one term on all
   members, index = applied index when idle, the term and index steps of a leader transfer,
   one raft entry per membership call, the index of a fresh cluster.
5. ``took`` of ``endpoint health`` becomes ``<duration>``; the Go client's JSON log lines are
   dropped from stderr.
6. **Only in the quorum-loss tests** that wait for etcdctl's ``--command-timeout``:
   ``Error: rpc error: code = Unknown desc = context deadline exceeded`` becomes ``Error:
   context deadline exceeded``. gRPC hands the client's deadline to the server, whose context
   then expires at the same instant; whether the client's own timer or the server's status
   (etcd: ctx.Err(), code Unknown) reaches etcdctl first is a race that the real etcd shows
   both ways from one run to the next. The tests also require that the call took the whole
   timeout on both.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from kv.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kv.client import KVClient
from kv.server.errors import EtcdError
from tests.cluster.processes import ProcessCluster, wait_for
from tests.compat.conftest import subject_kind
from tests.compat.etcdctl import EtcdctlResult, etcdctl
from tests.compat.normalise import STATUS_TYPE_ONLY_FIELDS
from tests.compat.scenario import (
    ScenarioMismatch,
    render,
    render_result,
    side_by_side,
    step_listing,
)
from tests.compat.servers import (
    CLUSTER_TOKEN,
    Server,
    etcd_cluster_id,
    etcd_member_id,
    free_ports,
)

pytestmark = pytest.mark.etcd

T = TypeVar("T")

#: etcd's strict reconfiguration check wants every voter connected for this long
#: (``HealthInterval``) before it accepts a MemberAdd; a margin is added for a busy machine.
HEALTH_INTERVAL_S = 5.0
HEALTH_MARGIN_S = 0.5
#: etcdctl's ``--command-timeout`` for the calls that cannot succeed without a quorum.
COMMAND_TIMEOUT_S = 2.0
DEADLINE_EXCEEDED = "Error: context deadline exceeded"
DEADLINE_EXCEEDED_BY_SERVER = "Error: rpc error: code = Unknown desc = context deadline exceeded"
LOG_LINES_IN_MESSAGE = 15
UNKNOWN_ID = 0x1234

_ID_KEYS: Final = frozenset({"ID", "member_id", "memberID", "leader"})
_TERM_KEYS: Final = frozenset({"raft_term", "raftTerm"})
_ADDRESS = re.compile(r"(?P<scheme>https?://)?127\.0\.0\.1:(?P<port>\d+)(?!\d)")
_HEX = re.compile(r"(?P<pad> *)\b(?P<hex>[0-9a-f]{1,16})\b")
_INITIAL_CLUSTER = re.compile(r'^ETCD_INITIAL_CLUSTER="(?P<entries>[^"]*)"$', re.MULTILINE)
_ADDED = re.compile(r"Member +(?P<id>[0-9a-f]+) added to cluster")
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def kv_differs(reason: str) -> pytest.MarkDecorator:
    """A known difference of kv, to be fixed in kv: strict, so the fix shows (and only when
    the subject is kv: a second etcd must pass)."""
    return pytest.mark.xfail(subject_kind() == "kv", strict=True, reason=f"kv differs: {reason}")


# --- normalisation (see the module docstring) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Labels:
    """How one cluster's identities are written after normalisation (rules 1 and 2)."""

    ids: Mapping[int, str]
    ports: Mapping[int, str]
    cluster_id: int

    def id_of_port(self, port: int) -> int | None:
        label = self.ports.get(port, "").rsplit("-", 1)[0]
        return next((i for i, name in self.ids.items() if name == label), None)


def _as_int(value: Any) -> int | None:
    """etcdctl's JSON has numbers; MessageToDict writes 64-bit ints as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _initial_cluster(match: re.Match[str], labels: Labels) -> str:
    """ETCD_INITIAL_CLUSTER: check the raw ID order (rule 3), then sort the normalised entries."""
    entries = match["entries"].split(",")
    ids: list[int] = []
    for entry in entries:
        address = _ADDRESS.search(entry)
        member = labels.id_of_port(int(address["port"])) if address else None
        ids.append(member if member is not None else -1)
    normalised = sorted(_plain_text(entry, labels) for entry in entries)
    marker = "" if ids == sorted(ids) and -1 not in ids else " <NOT IN ID ORDER>"
    return f'ETCD_INITIAL_CLUSTER="{",".join(normalised)}"{marker}'


def _plain_text(text: str, labels: Labels) -> str:
    def address(match: re.Match[str]) -> str:
        label = labels.ports.get(int(match["port"]))
        if label is None:
            return match[0]
        return f"<{label}-url>" if match["scheme"] else f"<{label}-endpoint>"

    def hex_id(match: re.Match[str]) -> str:
        value = int(match["hex"], 16)
        if value in labels.ids:
            placeholder = f"<id:{labels.ids[value]}>"
        elif value == labels.cluster_id:
            placeholder = "<cluster_id>"
        else:
            return match[0]
        # etcdctl prints IDs with %16x: the spaces that pad a shorter one belong to it.
        padding = 16 - len(match["hex"])
        pad = match["pad"]
        return (pad[:-padding] if 0 < padding <= len(pad) else pad) + placeholder

    return _HEX.sub(hex_id, _ADDRESS.sub(address, text))


def normalise_text(text: str, labels: Labels) -> str:
    text = _INITIAL_CLUSTER.sub(lambda m: _initial_cluster(m, labels), text)
    return _plain_text(text, labels)


def _sorted_by_id(items: list[Any], raw_id: Callable[[Any], int | None], labels: Labels) -> Any:
    """Rule 3: a list etcd gives in ID order, checked, then sorted by its normalised form."""
    ids = [raw_id(item) for item in items]
    normalised = [normalise_value(item, labels) for item in items]
    ordered = sorted(normalised, key=repr)
    if None in ids or ids != sorted(i for i in ids if i is not None):
        return {"<NOT IN ID ORDER>": normalised}
    return ordered


def _status_entry(entry: dict[str, Any]) -> dict[str, Any]:
    status = dict(entry["Status"])
    for name, kind in STATUS_TYPE_ONLY_FIELDS.items():
        if name not in status:
            status[name] = f"<MISSING {kind.__name__}>"
        elif isinstance(status[name], kind) and not isinstance(status[name], bool):
            status[name] = f"<{kind.__name__}>"
        else:
            status[name] = f"<WRONG TYPE {type(status[name]).__name__}: {status[name]!r}>"
    return {**entry, "Status": status}


def normalise_value(value: Any, labels: Labels) -> Any:
    """Parsed JSON (etcdctl) or MessageToDict (gRPC), rules 1-5."""
    if isinstance(value, str):
        return normalise_text(value, labels)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and isinstance(v.get("Status"), dict) for v in value):
            return _sorted_by_id(  # endpoint status --cluster: member-list order
                [_status_entry(v) for v in value],
                lambda v: _as_int(v["Status"].get("header", {}).get("member_id")),
                labels,
            )
        if value and all(isinstance(v, dict) and "health" in v for v in value):
            return sorted((normalise_value(v, labels) for v in value), key=repr)
        return [normalise_value(item, labels) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        number = _as_int(item)
        if key in _ID_KEYS and number is not None and number in labels.ids:
            out[key] = f"<id:{labels.ids[number]}>"
        elif key == "cluster_id" and number == labels.cluster_id:
            out[key] = "<cluster_id>"
        elif key in _TERM_KEYS and number is not None and number > 0:
            out[key] = "<raft_term>"
        elif key == "took" and "health" in value and _GO_DURATION.match(str(item)):
            out[key] = "<duration>"
        elif key == "members" and isinstance(item, list):
            out[key] = _sorted_by_id(item, lambda m: _as_int(m.get("ID")), labels)
        else:
            out[key] = normalise_value(item, labels)
    return out


def _is_client_log_line(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("{") and stripped.endswith("}") and '"level"' in stripped


def normalise_result(result: EtcdctlResult, labels: Labels) -> EtcdctlResult:
    if isinstance(result.output, str):
        output: Any = normalise_text(result.output.strip(), labels)
    else:
        output = normalise_value(result.output, labels)
    kept = [line for line in result.stderr.splitlines() if not _is_client_log_line(line)]
    return EtcdctlResult(result.exit_code, output, normalise_text("\n".join(kept).strip(), labels))


def normalise_outcome(outcome: Message | EtcdError, labels: Labels) -> dict[str, Any]:
    """A `KVClient` call's response (MessageToDict) or error (code name and exact message)."""
    if isinstance(outcome, EtcdError):
        return {"error": {"code": outcome.code.name, "message": outcome.message}}
    normalised: dict[str, Any] = normalise_value(
        MessageToDict(outcome, preserving_proto_field_name=True), labels
    )
    return normalised


def deadline_race(result: EtcdctlResult) -> EtcdctlResult:
    """Rule 6 (quorum-loss tests only): the server's context error at the client's deadline."""
    if result.stderr == DEADLINE_EXCEEDED_BY_SERVER:
        return result._replace(stderr=DEADLINE_EXCEEDED)
    return result


def added_member_ids(peer_urls: Sequence[str], since: float, until: float) -> set[int]:
    """The IDs etcd gives a member added between ``since`` and ``until`` (Unix seconds):
    ``NewMember`` hashes the sorted peer URLs, no cluster token and the second of the call."""
    return {etcd_member_id(peer_urls, str(t)) for t in range(int(since), int(until) + 1)}


#: Member IDs in this range print with 16 hex digits, the first not ``f`` (see `ports_for`).
ORDINARY_IDS: Final = range(1 << 60, 0xF << 60)
#: IDs in this range print with 15 hex digits, the first ``f``: as unpadded hex text they sort
#: after every ordinary ID, as numbers before all of them.
SHORT_IDS: Final = range(0xF << 56, 1 << 60)


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def ports_for(
    count: int, ids: Callable[[int], Iterable[int]], wanted: range, taken: Sequence[int] = ()
) -> list[int]:
    """``count`` distinct ports, free a moment ago and not in ``taken``, for which every ID in
    ``ids(port)`` is in ``wanted``. The suite gives members ports whose IDs are ordinary (16
    hex digits), so that the order of members is the same whether sorted by number or as hex
    text; `test_members_are_ordered_by_id_as_a_number` breaks that on purpose."""
    chosen: list[int] = []
    for _ in range(10_000):
        for port in free_ports(max(count, 16)):
            if port not in chosen and port not in taken and all(i in wanted for i in ids(port)):
                chosen.append(port)
                if len(chosen) == count:
                    return chosen
    raise RuntimeError(f"no {count} free ports with IDs in {wanted}")


def initial_ids(port: int) -> list[int]:
    return [etcd_member_id([url(port)], CLUSTER_TOKEN)]


def added_ids_from_now(port: int) -> set[int]:
    """The IDs a member added with this peer port gets in this second or the next two."""
    now = time.time()
    return added_member_ids([url(port)], now, now + 2)


# --- two clusters side by side --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Roles:
    """Who leads one cluster now; followers in name order."""

    leader: Server
    followers: tuple[Server, Server]

    def labels(self) -> dict[str, str]:
        """Member name -> role, for `Side.labels`."""
        followers = {f.name: f"follower{i + 1}" for i, f in enumerate(self.followers)}
        return {self.leader.name: "leader"} | followers


@dataclass(eq=False, slots=True)
class Side:
    """One of the two clusters, and what the normaliser must know about it."""

    title: str  # "reference" or "subject"
    cluster: ProcessCluster
    started: float = 0.0
    #: When leadership or membership last changed (time.monotonic()), the start included.
    changed: float = 0.0
    #: Members a test added: ID (verified against etcd's formula) and peer port -> label.
    added_ids: dict[int, str] = field(default_factory=dict)
    added_ports: dict[int, str] = field(default_factory=dict)

    def member(self, name: str) -> Server:
        return self.cluster.named(name)

    @property
    def initial_ids(self) -> list[int]:
        return [m.member_id for m in self.cluster.members]

    def labels(self, names: Mapping[str, str] | None = None) -> Labels:
        """Labels by member name, or by ``names`` (member name -> label, e.g. a role)."""
        by = [(m, (names or {}).get(m.name, m.name)) for m in self.cluster.members]
        ids = {m.member_id: label for m, label in by} | self.added_ids
        ports = {m.client_port: f"{label}-client" for m, label in by}
        ports |= {m.peer_port: f"{label}-peer" for m, label in by}
        ports |= {port: f"{label}-peer" for port, label in self.added_ports.items()}
        return Labels(ids, ports, etcd_cluster_id(self.initial_ids))

    def etcdctl(
        self,
        args: Sequence[str],
        at: Server | Sequence[Server],
        names: Mapping[str, str] | None = None,
    ) -> EtcdctlResult:
        members = [at] if isinstance(at, Server) else list(at)
        raw = etcdctl(",".join(m.endpoint for m in members), args)
        return normalise_result(raw, self.labels(names))

    async def grpc(
        self,
        call: Callable[[KVClient], Awaitable[Message]],
        at: Server,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        async with KVClient(at.endpoint) as client:
            try:
                outcome: Message | EtcdError = await call(client)
            except EtcdError as error:
                outcome = error
        return normalise_outcome(outcome, self.labels(names))

    async def roles(self) -> Roles:
        leader, _ = await self.cluster.agreed_leader(timeout=10.0)
        first, second = sorted(
            (m for m in self.cluster.up if m is not leader), key=lambda m: m.name
        )
        return Roles(leader, (first, second))

    async def statuses(self) -> list[rpc_pb2.StatusResponse]:
        return [await self.cluster.status(m) for m in self.cluster.up]

    async def idle_index(self) -> int:
        """The raft index once every member has applied all it has, the same on all."""

        async def probe() -> int | None:
            statuses = await self.statuses()
            indexes = {(s.raftIndex, s.raftAppliedIndex) for s in statuses}
            if len(indexes) == 1:
                ((index, applied),) = indexes
                if index == applied:
                    return index
            return None

        return await wait_for(probe, f"{self.title}: every member idle at one raft index", 10.0)

    async def settled_index(self, quiet: float = 0.3) -> int:
        """`idle_index`, once it has not moved for ``quiet`` seconds (a fresh etcd appends its
        cluster version a moment after it first looks idle)."""
        index = await self.idle_index()
        while True:
            await asyncio.sleep(quiet)  # the quiet period is the condition itself
            again = await self.idle_index()
            if again == index:
                return index
            index = again

    def wait_ready(self) -> None:
        """Wait for every member to serve (`Server.wait_ready`); the clock of `started` starts."""
        for member in self.cluster.members:
            member.wait_ready(timeout=30.0)
        self.started = self.changed = time.monotonic()

    async def wait_past(self, since: float) -> None:
        """etcd's strict check wants every voter connected for the last 5 s; that has no
        observable end, so the interval is waited out from ``since`` (time.monotonic())."""
        remaining = since + HEALTH_INTERVAL_S + HEALTH_MARGIN_S - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)  # the interval is the condition (see above)

    async def wait_until_reconfigurable(self) -> None:
        """Past etcd's 5 s after the start, when MemberAdd is no longer an unhealthy cluster."""
        await self.wait_past(self.started)

    def add_member(
        self,
        name: str,
        at: Server,
        *,
        learner: bool = False,
        simple: bool = False,
        names: Mapping[str, str] | None = None,
        short_id: bool = False,
    ) -> tuple[EtcdctlResult, int]:
        """``member add NAME --peer-urls=<a fresh port> [--learner]`` sent to ``at``, which
        registers the new member's label (its ID only if it is the one etcd would give).
        The port is one for which etcd's ID is ordinary for the next seconds (`ports_for`),
        or, with ``short_id``, in `SHORT_IDS` for the next second, and the call is made then.
        Returns the normalised result and the raw ID (0 when the add failed)."""
        if short_id:
            second = int(time.time()) + 1
            port = ports_for(1, lambda p: added_member_ids([url(p)], second, second), SHORT_IDS)[0]
            time.sleep(max(0.0, second - time.time()))  # the ID depends on the second of the call
        else:
            port = ports_for(1, added_ids_from_now, ORDINARY_IDS)[0]
        self.added_ports[port] = name
        args = ["member", "add", name, f"--peer-urls={url(port)}", *(["--learner"] * learner)]
        since = time.time()
        raw = etcdctl(at.endpoint, [*(["-w", "simple"] * simple), *args])
        until = time.time()
        member_id = 0
        if isinstance(raw.output, dict) and "member" in raw.output:
            member_id = int(raw.output["member"]["ID"])
        elif isinstance(raw.output, str) and (found := _ADDED.search(raw.output)):
            member_id = int(found["id"], 16)
        if member_id:
            self.changed = time.monotonic()
        if member_id in added_member_ids([url(port)], since - 1, until + 1):
            self.added_ids[member_id] = name
        return normalise_result(raw, self.labels(names)), member_id

    async def remove_added(self) -> None:
        """Remove every member but the three initial ones (a test's additions), at the leader."""
        leader, _ = await self.cluster.agreed_leader(timeout=10.0)
        async with KVClient(leader.endpoint) as client:
            listed = await client.member_list()
            for member in listed.members:
                if member.ID not in self.initial_ids:
                    await client.member_remove(member.ID)
                    self.changed = time.monotonic()
        self.added_ids.clear()
        self.added_ports.clear()

    async def lead_with(self, name: str) -> None:
        """Make member ``name`` the leader (MoveLeader at the current leader) unless it is."""
        target = self.member(name)
        leader, _ = await self.cluster.agreed_leader(timeout=10.0)
        if leader is target:
            return
        async with KVClient(leader.endpoint) as client:
            await client.move_leader(target.member_id)
        self.changed = time.monotonic()

        async def led() -> bool | None:
            return True if (await self.cluster.agreed_leader(timeout=2.0))[0] is target else None

        await wait_for(led, f"{self.title}: {name} leads", 10.0)

    def log_tails(self) -> list[str]:
        lines: list[str] = []
        for member in self.cluster.members:
            tail = member.log_tail(LOG_LINES_IN_MESSAGE).splitlines()
            lines += [f"[{self.title} {member.name}] {line}" for line in tail]
        return lines


@dataclass(eq=False, slots=True)
class ClusterPair:
    """The reference etcd cluster and the subject cluster; `step` compares one step."""

    reference: Side
    subject: Side
    labels: list[str] = field(default_factory=list)

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.reference, self.subject

    def compare(self, title: str, reference: T, subject: T) -> T:
        """Fail with both outputs side by side (and the members' last log lines) unless equal."""
        __tracebackhide__ = True
        self.labels.append(title)
        if reference == subject:
            return reference
        left, right = (
            render_result(x) if isinstance(x, EtcdctlResult) else render(x)
            for x in (reference, subject)
        )
        raise ScenarioMismatch(
            "\n".join(
                [
                    f"step {len(self.labels)} ({title}): {self.subject.cluster.kind} differs "
                    "from the real etcd (outputs normalised)",
                    step_listing(self.labels),
                    side_by_side(
                        left,
                        right,
                        "reference etcd cluster",
                        f"subject {self.subject.cluster.kind} cluster",
                    ),
                    "last log lines:",
                    *self.reference.log_tails(),
                    *self.subject.log_tails(),
                ]
            )
        )

    def step(self, title: str, run: Callable[[Side], T]) -> T:
        """Run ``run`` on the reference, then on the subject; the normalised results must match."""
        __tracebackhide__ = True
        return self.compare(title, run(self.reference), run(self.subject))

    async def astep(self, title: str, run: Callable[[Side], Awaitable[T]]) -> T:
        __tracebackhide__ = True
        return self.compare(title, await run(self.reference), await run(self.subject))

    async def roles(self) -> tuple[Roles, Roles]:
        return await self.reference.roles(), await self.subject.roles()


def launch_pair(workdir: Path) -> ClusterPair:
    """Both clusters' six members launched at once; `Side.wait_ready` waits for one side."""
    # The two clusters' ports come from one choice: neither can be given a port of the other.
    client_ports = free_ports(6)
    peer_ports = ports_for(6, initial_ids, ORDINARY_IDS, taken=client_ports)
    ports = [port for pair in zip(client_ports, peer_ports, strict=True) for port in pair]
    kind = subject_kind()
    pair = ClusterPair(
        Side("reference", ProcessCluster.create("etcd", workdir / "reference", ports=ports[:6])),
        Side("subject", ProcessCluster.create(kind, workdir / "subject", ports=ports[6:])),
    )
    for side in pair.sides:
        for member in side.cluster.members:
            member.launch()
    return pair


def stop_pair(pair: ClusterPair, workdir: Path) -> None:
    for side in pair.sides:
        side.cluster.stop()
    shutil.rmtree(workdir, ignore_errors=True)  # etcd preallocates 64 MB of WAL per member


@dataclass(frozen=True, slots=True)
class Startup:
    """What each cluster showed right after it started, before any test ran: per side, the
    settled raft index and term (every member's Status), and a MemberAdd's result."""

    fresh: tuple[dict[str, Any], dict[str, Any]]
    early_add: tuple[EtcdctlResult, EtcdctlResult]


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClusterPair, Startup]]:
    workdir = tmp_path_factory.mktemp("clusters")
    pair = launch_pair(workdir)
    try:
        # One side at a time, each as soon as it serves (the other may still be booting): the
        # settled raft index, then a MemberAdd at the leader while the voters have been
        # connected for less than 5 s (an add the subject wrongly accepts is taken back).
        fresh: list[dict[str, Any]] = []
        early: list[EtcdctlResult] = []
        for side in pair.sides:
            side.wait_ready()
            index = asyncio.run(side.settled_index())
            statuses = asyncio.run(side.statuses())
            fresh.append(
                {"raft index": index, "raft terms": sorted({s.raftTerm for s in statuses})}
            )
            roles = asyncio.run(side.roles())
            result, member_id = side.add_member("n4", roles.leader, names=roles.labels())
            early.append(result)
            if member_id:
                asyncio.run(side.remove_added())
        startup = Startup((fresh[0], fresh[1]), (early[0], early[1]))
        yield pair, startup
    finally:
        stop_pair(pair, workdir)


@pytest.fixture
async def pair(clusters: tuple[ClusterPair, Startup]) -> AsyncIterator[ClusterPair]:
    """The module's clusters, for one test: its own step list, and its added members removed."""
    cluster_pair, _ = clusters
    cluster_pair.labels = []
    yield cluster_pair
    for side in cluster_pair.sides:
        await side.remove_added()


@pytest.fixture
def startup(clusters: tuple[ClusterPair, Startup]) -> tuple[ClusterPair, Startup]:
    """The module's clusters (for `ClusterPair.compare`) and what they showed at the start."""
    cluster_pair, start = clusters
    cluster_pair.labels = []
    return cluster_pair, start


def status_shape(result: EtcdctlResult) -> dict[str, Any]:
    """What must hold of a raw ``endpoint status --cluster`` whoever leads (rule 4)."""
    statuses = [entry["Status"] for entry in result.output]
    leaders = {s.get("leader") for s in statuses}
    own = {s["header"]["member_id"] for s in statuses}
    return {
        "members answering": len(statuses),
        "distinct leaders reported": len(leaders),
        "the leader is one of them": leaders <= own,
        "distinct raft terms": len({s["raftTerm"] for s in statuses}),
        "header term = status term": all(
            s["header"]["raft_term"] == s["raftTerm"] for s in statuses
        ),
        "raftIndex == raftAppliedIndex": all(
            s["raftIndex"] == s["raftAppliedIndex"] for s in statuses
        ),
        "distinct raft indexes": len({s["raftIndex"] for s in statuses}),
    }


# --- member list, endpoint status and health ------------------------------------------------


def test_member_list_shows_every_member_by_id_with_names(pair: ClusterPair) -> None:
    r = pair.step("member list", lambda s: s.etcdctl(["member", "list"], s.member("n1")))
    assert r.exit_code == 0
    assert r.output == {
        "header": {
            "cluster_id": "<cluster_id>",
            "member_id": "<id:n1>",
            "raft_term": "<raft_term>",
        },
        "members": [
            {
                "ID": f"<id:{name}>",
                "name": name,
                "peerURLs": [f"<{name}-peer-url>"],
                "clientURLs": [f"<{name}-client-url>"],
            }
            for name in ("n1", "n2", "n3")
        ],
    }


def member_list_at(name: str) -> Callable[[Side], EtcdctlResult]:
    return lambda side: side.etcdctl(["member", "list"], side.member(name))


def test_member_list_header_is_the_answering_members(pair: ClusterPair) -> None:
    for name in ("n2", "n3"):
        r = pair.step(f"member list on {name}", member_list_at(name))
        assert r.output["header"]["member_id"] == f"<id:{name}>"


def test_fresh_cluster_members_all_stand_at_raft_index_8(
    startup: tuple[ClusterPair, Startup],
) -> None:
    """Entries 1-3 add the members, 4 is the leader's empty entry, 5-7 publish each member's
    name and client URLs, 8 sets the cluster version (CLUSTER-FACTS, start-up)."""
    pair, start = startup
    reference, subject = (fresh["raft index"] for fresh in start.fresh)
    assert pair.compare("raft index of the fresh cluster", reference, subject) == 8


def test_fresh_cluster_elects_its_first_leader_at_term_2(
    startup: tuple[ClusterPair, Startup],
) -> None:
    """etcd fast-forwards the election clock once the peers are connected, and the first
    member to campaign wins at term 2 (only a three-way split vote would take another term)."""
    pair, start = startup
    reference, subject = (fresh["raft terms"] for fresh in start.fresh)
    assert pair.compare("raft term of every member of the fresh cluster", reference, subject) == [2]


async def test_endpoint_status_cluster_one_leader_agreed_at_one_term(pair: ClusterPair) -> None:
    await pair.reference.idle_index()
    await pair.subject.idle_index()
    reference_roles, subject_roles = await pair.roles()
    names = {pair.reference: reference_roles.labels(), pair.subject: subject_roles.labels()}
    r = pair.step(
        "endpoint status --cluster",
        lambda s: s.etcdctl(["endpoint", "status", "--cluster"], s.member("n1"), names[s]),
    )
    shapes = pair.step(
        "shape of the raw status",
        lambda s: status_shape(
            etcdctl(s.member("n1").endpoint, ["endpoint", "status", "--cluster"])
        ),
    )
    assert r.exit_code == 0
    assert [entry["Status"]["header"]["member_id"] for entry in r.output] == [
        "<id:follower1>",
        "<id:follower2>",
        "<id:leader>",
    ]
    assert {entry["Status"]["leader"] for entry in r.output} == {"<id:leader>"}
    assert all(
        "errors" not in entry["Status"] and "isLearner" not in entry["Status"] for entry in r.output
    )
    assert shapes == {
        "members answering": 3,
        "distinct leaders reported": 1,
        "the leader is one of them": True,
        "distinct raft terms": 1,
        "header term = status term": True,
        "raftIndex == raftAppliedIndex": True,
        "distinct raft indexes": 1,
    }


def test_endpoint_health_cluster_every_member_is_healthy(pair: ClusterPair) -> None:
    r = pair.step(
        "endpoint health --cluster",
        lambda s: s.etcdctl(["endpoint", "health", "--cluster"], s.member("n1")),
    )
    assert r == EtcdctlResult(
        0,
        [
            {"endpoint": f"<{n}-client-url>", "health": True, "took": "<duration>"}
            for n in ("n1", "n2", "n3")
        ],
        "",
    )


# --- membership --------------------------------------------------------------------------------


def test_member_add_right_after_start_is_refused_as_unhealthy(
    startup: tuple[ClusterPair, Startup],
) -> None:
    """Strict reconfig check: a MemberAdd (here at the leader) while the voters have been
    connected for less than 5 s finds the cluster unhealthy; it uses no raft entry."""
    pair, start = startup
    result = pair.compare("member add n4 at the leader, at the start", *start.early_add)
    assert result == EtcdctlResult(1, "", "Error: etcdserver: unhealthy cluster")


async def test_member_add_sent_to_a_follower_is_accepted(pair: ClusterPair) -> None:
    """A follower answers MemberAdd itself (its header): every member keeps a connection to
    every other, so the strict check passes on a follower as on the leader. Asked when the
    cluster has been quiet for 5 s (no membership or leader change), which etcd does not need.
    Compared: everything but the member list (names by role would not match; it is compared
    in full by the other add tests)."""
    for side in pair.sides:
        await side.wait_past(side.changed)
    reference_roles, subject_roles = await pair.roles()
    roles = {pair.reference: reference_roles, pair.subject: subject_roles}

    def add(side: Side) -> dict[str, Any]:
        added, _ = side.add_member("n4", roles[side].followers[0], names=roles[side].labels())
        output = added.output if isinstance(added.output, dict) else {}
        return {
            "exit code": added.exit_code,
            "stderr": added.stderr,
            "header": output.get("header"),
            "member": output.get("member"),
            "members": len(output.get("members", [])),
        }

    r = pair.step("member add n4 at follower1", add)
    assert r == {
        "exit code": 0,
        "stderr": "",
        "header": {
            "cluster_id": "<cluster_id>",
            "member_id": "<id:follower1>",
            "raft_term": "<raft_term>",
        },
        "member": {"ID": "<id:n4>", "peerURLs": ["<n4-peer-url>"]},
        "members": 4,
    }


async def reconfigurable(pair: ClusterPair) -> None:
    """Membership tests send to ``n1`` as the leader (the same member on both sides), past
    the strict check's 5 s."""
    for side in pair.sides:
        await side.wait_until_reconfigurable()
        await side.lead_with("n1")


async def test_member_add_of_a_voter_prints_the_new_members_environment(pair: ClusterPair) -> None:
    await reconfigurable(pair)
    r = pair.step(
        "member add n4 (simple)", lambda s: s.add_member("n4", s.member("n1"), simple=True)[0]
    )
    assert r == EtcdctlResult(
        0,
        "Member <id:n4> added to cluster <cluster_id>\n\n"
        'ETCD_NAME="n4"\n'
        'ETCD_INITIAL_CLUSTER="n1=<n1-peer-url>,n2=<n2-peer-url>,n3=<n3-peer-url>,n4=<n4-peer-url>"\n'
        'ETCD_INITIAL_ADVERTISE_PEER_URLS="<n4-peer-url>"\n'
        'ETCD_INITIAL_CLUSTER_STATE="existing"',
        "",
    )


async def test_member_list_shows_an_added_voter_unstarted_without_a_name(
    pair: ClusterPair,
) -> None:
    await reconfigurable(pair)
    added = pair.step("member add n4", lambda s: s.add_member("n4", s.member("n1"))[0])
    listed = pair.step("member list", lambda s: s.etcdctl(["member", "list"], s.member("n2")))
    unstarted = {"ID": "<id:n4>", "peerURLs": ["<n4-peer-url>"]}
    assert added.exit_code == listed.exit_code == 0
    assert added.output["member"] == unstarted
    assert added.output["members"] == listed.output["members"]
    assert unstarted in listed.output["members"]
    header = {"cluster_id", "member_id", "raft_term"}
    assert set(added.output["header"]) == set(listed.output["header"]) == header
    assert listed.output["header"]["member_id"] == "<id:n2>"


async def test_member_add_of_a_used_peer_url_is_refused(pair: ClusterPair) -> None:
    await reconfigurable(pair)
    r = pair.step(
        "member add with n2's peer URL",
        lambda s: s.etcdctl(
            ["member", "add", "dup", f"--peer-urls={s.member('n2').peer_url}"], s.member("n1")
        ),
    )
    assert r == EtcdctlResult(1, "", "Error: etcdserver: Peer URLs already exists")


async def test_member_add_of_a_second_learner_is_refused(pair: ClusterPair) -> None:
    await reconfigurable(pair)
    first = pair.step(
        "member add --learner l1", lambda s: s.add_member("l1", s.member("n1"), learner=True)[0]
    )
    second = pair.step(
        "member add --learner l2", lambda s: s.add_member("l2", s.member("n1"), learner=True)[0]
    )
    listed = pair.step("member list", lambda s: s.etcdctl(["member", "list"], s.member("n1")))
    learner = {"ID": "<id:l1>", "peerURLs": ["<l1-peer-url>"], "isLearner": True}
    assert first.exit_code == 0
    assert first.output["member"] == learner
    assert second == EtcdctlResult(1, "", "Error: etcdserver: too many learner members in cluster")
    assert learner in listed.output["members"]
    assert len(listed.output["members"]) == 4


async def test_members_are_ordered_by_id_as_a_number(pair: ClusterPair) -> None:
    """etcd sorts members by ID as numbers: a learner whose ID has 15 hex digits (``f...``)
    comes first, before the members whose IDs have 16 (rule 3 marks any other order)."""
    await reconfigurable(pair)

    def add(side: Side) -> dict[str, Any]:
        result, member_id = side.add_member("l1", side.member("n1"), learner=True, short_id=True)
        return {"added": result, "the ID has 15 hex digits": member_id in SHORT_IDS}

    added = pair.step("member add --learner l1, an ID of 15 hex digits", add)
    listed = pair.step("member list", member_list_at("n2"))
    assert added["the ID has 15 hex digits"]
    assert added["added"].exit_code == listed.exit_code == 0
    assert isinstance(listed.output["members"], list)  # not marked <NOT IN ID ORDER>
    assert len(listed.output["members"]) == 4


async def test_member_promote_of_a_voter_is_refused(pair: ClusterPair) -> None:
    await reconfigurable(pair)
    r = pair.step(
        "member promote n2",
        lambda s: s.etcdctl(["member", "promote", f"{s.member('n2').member_id:x}"], s.member("n1")),
    )
    assert r == EtcdctlResult(1, "", "Error: etcdserver: can only promote a learner member")


async def test_member_remove_of_an_unknown_id_is_not_found(pair: ClusterPair) -> None:
    await reconfigurable(pair)
    r = pair.step(
        "member remove 1234",
        lambda s: s.etcdctl(["member", "remove", f"{UNKNOWN_ID:x}"], s.member("n1")),
    )
    assert r == EtcdctlResult(1, "", "Error: etcdserver: member not found")


@kv_differs(
    "deliberate (docs/reference/compatibility.md): kv checks refused remove/promote/add "
    "before proposing, so they use no raft entry where etcd's use one"
)
async def test_refused_membership_calls_each_use_one_raft_entry(pair: ClusterPair) -> None:
    """etcd finds an unknown ID, a voter to promote and a used peer URL when it applies the
    entry: each refusal costs one raft entry (on every member)."""
    await reconfigurable(pair)
    calls: dict[str, Callable[[Side], list[str]]] = {
        "remove unknown": lambda s: ["member", "remove", f"{UNKNOWN_ID:x}"],
        "promote voter": lambda s: ["member", "promote", f"{s.member('n2').member_id:x}"],
        "add used peer URL": lambda s: [
            "member",
            "add",
            "dup",
            f"--peer-urls={s.member('n3').peer_url}",
        ],
    }

    async def entries_used(side: Side) -> dict[str, Any]:
        used: dict[str, Any] = {}
        for name, args in calls.items():
            before = await side.idle_index()
            result = etcdctl(side.member("n1").endpoint, args(side))
            used[name] = {
                "exit code": result.exit_code,
                "entries": await side.idle_index() - before,
            }
        return used

    used = await pair.astep("raft entries used by each refused call", entries_used)
    assert used == {name: {"exit code": 1, "entries": 1} for name in calls}


#: Peer URLs etcd refuses in MemberAdd (INVALID_ARGUMENT, no entry) but accepts in MemberUpdate.
INVALID_PEER_URLS: Final[tuple[list[str], ...]] = (
    [],
    ["bad url"],
    ["127.0.0.1:2"],
    ["http://127.0.0.1:2/path"],
)


async def test_member_update_with_an_invalid_url_is_refused_by_kv(pair: ClusterPair) -> None:
    """kv alone, over gRPC (etcdctl checks the URLs itself and never sends these). etcd 3.4
    accepts MemberUpdate with empty or unusable peer URLs and then every other member panics
    applying it (CLUSTER-FACTS, member update): the cluster is lost, so this is never sent to
    the real etcd. kv deliberately refuses them as MemberAdd does, before proposing anything,
    on the leader and on a follower; the members are unchanged and all still healthy."""
    side = pair.subject
    if side.cluster.kind == "etcd":
        pytest.skip("would crash the real etcd (a documented etcd 3.4 bug)")
    await side.lead_with("n1")
    before = side.etcdctl(["member", "list"], side.member("n1"))
    index = await side.idle_index()
    n2 = side.member("n2").member_id
    answers = []
    for at in (side.member("n1"), side.member("n3")):
        async with grpc.aio.insecure_channel(at.endpoint) as channel:
            stub = rpc_pb2_grpc.ClusterStub(channel)
            for urls in INVALID_PEER_URLS:
                request = rpc_pb2.MemberUpdateRequest(ID=n2, peerURLs=urls)
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await stub.MemberUpdate(request, timeout=5)
                answers.append((raised.value.code(), raised.value.details()))
    after = side.etcdctl(["member", "list"], side.member("n3"))
    health = side.etcdctl(["endpoint", "health", "--cluster"], side.member("n1"))
    invalid = (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")
    assert answers == [invalid] * (2 * len(INVALID_PEER_URLS))
    assert await side.idle_index() == index
    assert after.output["members"] == before.output["members"]
    assert health.exit_code == 0
    assert [entry["health"] for entry in health.output] == [True] * 3


# --- move-leader -----------------------------------------------------------------------------


async def test_move_leader_to_an_unknown_id_is_a_bad_transferee(pair: ClusterPair) -> None:
    r = pair.step(
        "move-leader 1234",
        lambda s: s.etcdctl(["move-leader", f"{UNKNOWN_ID:x}"], s.cluster.members),
    )
    assert r == EtcdctlResult(1, "", "Error: etcdserver: bad leader transferee")


async def test_move_leader_to_the_current_leader_changes_nothing(pair: ClusterPair) -> None:
    reference_roles, subject_roles = await pair.roles()
    roles = {pair.reference: reference_roles, pair.subject: subject_roles}
    terms = {}
    for side in pair.sides:
        await side.idle_index()
        terms[side] = (await side.cluster.agreed_leader())[1]
    r = pair.step(
        "move-leader <leader>",
        lambda s: s.etcdctl(
            ["-w", "simple", "move-leader", f"{roles[s].leader.member_id:x}"],
            s.cluster.members,
            roles[s].labels(),
        ),
    )
    after = await pair.astep(
        "leader and term after",
        lambda s: _leader_and_term_change(s, roles[s].leader, terms[s]),
    )
    assert r == EtcdctlResult(0, "Leadership transferred from <id:leader> to <id:leader>", "")
    assert after == {"leader is": "the same member", "term change": 0}


async def _leader_and_term_change(side: Side, expected: Server, term_before: int) -> dict[str, Any]:
    await side.settled_index()
    leader, term = await side.cluster.agreed_leader(timeout=10.0)
    return {
        "leader is": "the same member" if leader is expected else f"another member ({leader.name})",
        "term change": term - term_before,
    }


async def test_move_leader_to_a_follower_moves_leadership(pair: ClusterPair) -> None:
    """About 0.1 s; the term goes up by one and the new leader appends its empty entry."""
    reference_roles, subject_roles = await pair.roles()
    roles = {pair.reference: reference_roles, pair.subject: subject_roles}
    before: dict[Side, tuple[int, int]] = {}
    for side in pair.sides:
        index = await side.idle_index()
        before[side] = (index, (await side.cluster.agreed_leader())[1])
    r = pair.step(
        "move-leader <follower1>",
        lambda s: s.etcdctl(
            ["-w", "simple", "move-leader", f"{roles[s].followers[0].member_id:x}"],
            s.cluster.members,
            roles[s].labels(),
        ),
    )
    for side in pair.sides:
        side.changed = time.monotonic()

    async def after(side: Side) -> dict[str, Any]:
        # (settled first: the new leader's empty entry applied everywhere)
        outcome = await _leader_and_term_change(side, roles[side].followers[0], before[side][1])
        outcome["index change"] = await side.idle_index() - before[side][0]
        return outcome

    changes = await pair.astep("leader, term and index after", after)
    assert r == EtcdctlResult(0, "Leadership transferred from <id:leader> to <id:follower1>", "")
    assert changes == {"leader is": "the same member", "term change": 1, "index change": 1}


async def test_move_leader_with_only_followers_given_finds_no_leader(pair: ClusterPair) -> None:
    reference_roles, subject_roles = await pair.roles()
    roles = {pair.reference: reference_roles, pair.subject: subject_roles}
    r = pair.step(
        "move-leader at follower1 only",
        lambda s: s.etcdctl(
            ["move-leader", f"{roles[s].followers[1].member_id:x}"],
            roles[s].followers[0],
            roles[s].labels(),
        ),
    )
    assert r == EtcdctlResult(
        128, "", "Error: no leader endpoint given at [<follower1-client-endpoint>]"
    )


async def test_grpc_move_leader_sent_to_a_follower_is_not_leader(pair: ClusterPair) -> None:
    reference_roles, subject_roles = await pair.roles()
    roles = {pair.reference: reference_roles, pair.subject: subject_roles}
    r = await pair.astep(
        "MoveLeader(follower2) sent to follower1",
        lambda s: s.grpc(
            lambda c: c.move_leader(roles[s].followers[1].member_id),
            roles[s].followers[0],
            roles[s].labels(),
        ),
    )
    assert r == {"error": {"code": "FAILED_PRECONDITION", "message": "etcdserver: not leader"}}


# --- writes and reads through a follower -------------------------------------------------------


async def test_put_through_a_follower_carries_the_followers_member_id(pair: ClusterPair) -> None:
    reference_roles, subject_roles = await pair.roles()
    roles = {pair.reference: reference_roles, pair.subject: subject_roles}
    r = pair.step(
        "put on follower1",
        lambda s: s.etcdctl(
            ["put", "through-follower", "v"], roles[s].followers[0], roles[s].labels()
        ),
    )
    g = await pair.astep(
        "Put on follower2 (gRPC)",
        lambda s: s.grpc(
            lambda c: c.put("through-follower", "w"), roles[s].followers[1], roles[s].labels()
        ),
    )
    assert r.exit_code == 0
    assert r.output["header"]["member_id"] == "<id:follower1>"
    assert g["header"]["member_id"] == "<id:follower2>"


async def test_serializable_and_linearizable_gets_on_a_follower_are_served(
    pair: ClusterPair,
) -> None:
    reference_roles, subject_roles = await pair.roles()
    roles = {pair.reference: reference_roles, pair.subject: subject_roles}
    pair.step(
        "put on the leader",
        lambda s: s.etcdctl(["put", "on-follower", "v"], roles[s].leader, roles[s].labels()),
    )
    serializable = pair.step(
        "get --consistency=s on follower2",
        lambda s: s.etcdctl(
            ["get", "on-follower", "--consistency=s"], roles[s].followers[1], roles[s].labels()
        ),
    )
    linearizable = pair.step(
        "get on follower2",
        lambda s: s.etcdctl(["get", "on-follower"], roles[s].followers[1], roles[s].labels()),
    )
    for r in (serializable, linearizable):
        assert r.exit_code == 0
        assert r.output["header"]["member_id"] == "<id:follower2>"
        assert r.output["count"] == 1


# --- without a quorum: two of three members SIGKILLed ------------------------------------------


@dataclass(frozen=True, slots=True)
class QuorumLost:
    pair: ClusterPair
    survivors: dict[str, Server]  # side title ("reference", "subject") -> the member left


@pytest.fixture(scope="class")
def quorum_lost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuorumLost]:
    """A fresh pair; on each side a key is written, then the leader and one follower are
    SIGKILLed, and the remaining follower is waited for until it reports no leader."""
    workdir = tmp_path_factory.mktemp("quorum-lost")
    pair = launch_pair(workdir)

    async def break_quorum(side: Side) -> Server:
        roles = await side.roles()
        assert etcdctl(roles.leader.endpoint, ["put", "before-the-loss", "v"]).exit_code == 0
        await side.idle_index()
        side.cluster.kill(roles.leader)
        side.cluster.kill(roles.followers[1])
        survivor = roles.followers[0]

        async def leaderless() -> bool | None:
            return True if (await side.cluster.status(survivor)).leader == 0 else None

        await wait_for(leaderless, f"{side.title}: {survivor.name} sees no leader", 10.0)
        return survivor

    try:
        for side in pair.sides:
            side.wait_ready()
        survivors = {side.title: asyncio.run(break_quorum(side)) for side in pair.sides}
        yield QuorumLost(pair, survivors)
    finally:
        stop_pair(pair, workdir)


class TestWithoutQuorum:
    """The survivor of a three-member cluster that lost two members (same whether it led)."""

    @staticmethod
    def run(lost: QuorumLost, title: str, args: Sequence[str]) -> EtcdctlResult:
        lost.pair.labels = []
        survivor = lost.survivors
        return lost.pair.step(
            title,
            lambda s: s.etcdctl(args, survivor[s.title], {survivor[s.title].name: "survivor"}),
        )

    def test_serializable_get_is_still_served(self, quorum_lost: QuorumLost) -> None:
        r = self.run(
            quorum_lost, "get --consistency=s", ["get", "before-the-loss", "--consistency=s"]
        )
        assert r.exit_code == 0
        assert r.output["count"] == 1
        assert r.output["header"]["member_id"] == "<id:survivor>"

    def test_endpoint_status_reports_no_leader(self, quorum_lost: QuorumLost) -> None:
        r = self.run(quorum_lost, "endpoint status", ["endpoint", "status"])
        assert r.exit_code == 0
        (entry,) = r.output
        assert entry["Endpoint"] == "<survivor-client-endpoint>"
        assert entry["Status"]["errors"] == ["etcdserver: no leader"]
        assert "leader" not in entry["Status"]

    def test_member_list_is_still_served(self, quorum_lost: QuorumLost) -> None:
        """Compared twice: the header by role (who answers), the members by name."""
        survivor = quorum_lost.survivors
        quorum_lost.pair.labels = []

        def member_list(side: Side) -> dict[str, Any]:
            member = survivor[side.title]
            raw = etcdctl(member.endpoint, ["member", "list"])
            by_role = normalise_result(raw, side.labels({member.name: "survivor"}))
            by_name = normalise_result(raw, side.labels())
            return {
                "exit code": raw.exit_code,
                "header": by_role.output["header"],
                "members": by_name.output["members"],
            }

        r = quorum_lost.pair.step("member list", member_list)
        assert r["exit code"] == 0
        assert r["header"]["member_id"] == "<id:survivor>"
        assert [m["name"] for m in r["members"]] == ["n1", "n2", "n3"]

    @staticmethod
    async def timed_out(lost: QuorumLost, title: str, args: Sequence[str]) -> EtcdctlResult:
        """Both sides at once (each waits the whole timeout); rule 6 applies."""
        lost.pair.labels = []
        survivor = lost.survivors
        full = ["--command-timeout=2s", *args]

        def run(side: Side) -> dict[str, Any]:
            member = survivor[side.title]
            started = time.monotonic()
            result = deadline_race(side.etcdctl(full, member, {member.name: "survivor"}))
            return {
                "exit code": result.exit_code,
                "stdout": result.output,
                "stderr": result.stderr,
                "took the whole timeout": time.monotonic() - started >= COMMAND_TIMEOUT_S - 0.1,
            }

        reference, subject = await asyncio.gather(
            *(asyncio.to_thread(run, side) for side in lost.pair.sides)
        )
        outcome = lost.pair.compare(title, reference, subject)
        assert outcome["took the whole timeout"]
        return EtcdctlResult(outcome["exit code"], outcome["stdout"], outcome["stderr"])

    async def test_linearizable_get_fails_at_the_deadline(self, quorum_lost: QuorumLost) -> None:
        result = await self.timed_out(
            quorum_lost, "get (linearizable), --command-timeout=2s", ["get", "before-the-loss"]
        )
        assert result == EtcdctlResult(1, "", DEADLINE_EXCEEDED)

    async def test_put_fails_at_the_deadline(self, quorum_lost: QuorumLost) -> None:
        result = await self.timed_out(
            quorum_lost, "put, --command-timeout=2s", ["put", "after-the-loss", "v"]
        )
        assert result == EtcdctlResult(1, "", DEADLINE_EXCEEDED)
