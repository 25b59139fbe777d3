"""The crash tests' machinery: a stream of writes, a SIGKILL, and a model that checks recovery.

One *cycle* of a crash test:

1. `WriteStream` runs 16 writers (each with its own connection, each writing only its own
   four keys: puts with values never used before, some deletes) and a compactor that compacts
   now and then, often at the revision of a delete (etcd issue #17780). Every request is
   recorded as an `Op` *before* it is sent; the answer makes it ``ACKED`` with the revision
   the server returned. A request without an answer stays ``UNANSWERED``: it may or may not
   have happened.
2. After the N-th acknowledged write (N drawn from the seed) the server gets SIGKILL, at once,
   from the callback that counted the acknowledgement. Writers still waiting get errors and
   stop; a writer stops at its first unanswered request, so each key has at most one.
3. The server restarts on the same data dir, in some cycles only after a restart or two that
   were killed while they recovered (`interrupt_recovery`); `observe` reads the whole key
   space, the revision, the compaction revision and HashKV.
4. `check_recovery` replays the recorded ops on a `Model` of the store (the state observed
   after the previous recovery): acknowledged writes must be there exactly (value,
   create/mod revision, version) unless a later acknowledged write to the key superseded them;
   an unanswered write is either absent or whole; no key appears that nobody wrote; every
   revision after the previous recovery is accounted for by a write that was sent (so none was
   invented and none was lost); an acknowledged compaction holds.
5. `check_history` reads every remembered write back at its revision (``range(key,
   revision=r)``) as long as the compaction revision allows, and checks that reading below
   the compaction revision is refused.
6. The server is killed again at once and restarted: the observation, HashKV included, must
   be identical (recovering twice changes nothing).

Everything random comes from the seed: the kill moment, each writer's keys and operations,
when and where the compactor compacts. The interleaving of the writers is the scheduler's, so
a seed replays the same plan, not the same history. Nothing sleeps for correctness: the kill
waits on a count of acknowledgements, readiness on the server's answer.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from grpc import StatusCode

from kv.api.mvccpb import kv_pb2
from kv.client import ChannelOption, KVClient
from kv.server.errors import EtcdError
from tests.compat.servers import Server

#: ``KV_CRASH_SEED=N pytest tests/crash`` replays the plan of a failed run.
SEED_ENV = "KV_CRASH_SEED"

WRITERS = 16
KEYS_PER_WRITER = 4
DELETE_SHARE = 0.15
#: The compactor compacts after this many more acknowledged writes (drawn per compaction).
COMPACT_EVERY = (10, 60)
#: How often the compactor aims at the revision of an acknowledged delete.
TOMBSTONE_COMPACTION_SHARE = 1 / 3
#: Generous per-call deadline: an answer that does not come fails the run, not a flaky wait.
CALL_TIMEOUT = 10.0
#: One cycle's write stream may take this long before the test gives up on it.
STREAM_DEADLINE = 60.0
#: Historic reads in flight at once.
READ_CONCURRENCY = 64
#: A connection of its own for every client: writers must not share one HTTP/2 connection.
FRESH_CONNECTION: Sequence[ChannelOption] = [("grpc.use_local_subchannel_pool", 1)]
#: How many times a restart is killed while it recovers, before the restart that is checked.
RECOVERY_KILLS = (0, 0, 1, 2)
#: The line ``kv serve`` logs right before it opens the data dir (kv.server.app).
RECOVERY_BEGINS = b"kv.server.app: advertise client URLs = "
RECOVERY_DEADLINE = 20.0
#: A fresh kv store stands at revision 1 and has never been compacted.
FIRST_REVISION = 1
NEVER_COMPACTED = -1
COMPACTED_MESSAGE = "etcdserver: mvcc: required revision has been compacted"


def writer_key(writer: int, slot: int) -> bytes:
    return f"crash/w{writer:02d}/k{slot}".encode()


def put_value(seed: int, cycle: int, writer: int, sequence: int, size: int = 0) -> bytes:
    """A value never sent before: whoever finds it knows exactly which request wrote it.

    ``size`` pads it with dots to that many bytes (large values fill WAL segments quickly).
    """
    value = f"seed={seed} cycle={cycle} writer={writer} seq={sequence}".encode()
    return value.ljust(size, b".")


def short(value: bytes) -> str:
    """A value for a message: large ones are cut, with their length."""
    return repr(value) if len(value) <= 80 else f"{value[:64]!r}...({len(value)} bytes)"


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a read of one key returns (the fields a crash could get wrong)."""

    value: bytes
    create_revision: int
    mod_revision: int
    version: int

    @classmethod
    def of(cls, kv: kv_pb2.KeyValue) -> KeyState:
        return cls(kv.value, kv.create_revision, kv.mod_revision, kv.version)

    def __repr__(self) -> str:
        return (
            f"KeyState(value={short(self.value)}, create_revision={self.create_revision}, "
            f"mod_revision={self.mod_revision}, version={self.version})"
        )


def after_put(before: KeyState | None, value: bytes, revision: int) -> KeyState:
    """A key's state after a put at ``revision``; ``before`` is its state before (None: absent)."""
    if before is None:
        return KeyState(value, revision, revision, 1)
    return KeyState(value, before.create_revision, revision, before.version + 1)


class Outcome(Enum):
    ACKED = "acknowledged"
    UNANSWERED = "unanswered"  # sent, and no answer came: it may or may not have happened


OpKind = Literal["put", "delete", "compact"]


@dataclass(slots=True)
class Op:
    """One request as the client saw it."""

    kind: OpKind
    key: bytes = b""
    value: bytes = b""
    compact_to: int = 0
    #: The highest revision acknowledged to anyone when this request was sent: whatever
    #: revision the request gets, it comes after that (the server applies in order).
    floor: int = 0
    outcome: Outcome = Outcome.UNANSWERED
    revision: int = 0  # the answer's header.revision
    deleted: int = 0  # a delete's answer: how many keys it deleted
    error: str = ""  # why no answer came

    def __str__(self) -> str:
        what = {
            "put": f"put {self.key!r}={short(self.value)}",
            "delete": f"delete {self.key!r}",
            "compact": f"compact {self.compact_to}",
        }[self.kind]
        if self.outcome is Outcome.ACKED:
            extra = f" deleted={self.deleted}" if self.kind == "delete" else ""
            return f"{what} -> acknowledged at revision {self.revision}{extra}"
        return f"{what} -> unanswered ({self.error or 'no answer'}), sent after rev {self.floor}"


@dataclass(frozen=True, slots=True)
class Observation:
    """What a recovered server shows, before anyone writes to it."""

    revision: int
    compact_revision: int
    hash: int
    keys: Mapping[bytes, KeyState]


async def observe(endpoint: str) -> Observation:
    """The whole key space, the revision, the compaction revision and HashKV."""
    async with KVClient(endpoint, timeout=CALL_TIMEOUT, options=FRESH_CONNECTION) as client:
        everything = await client.range(b"\0", b"\0")
        hashed = await client.hash_kv()
    assert hashed.header.revision == everything.header.revision, "a write came in between"
    keys = {kv.key: KeyState.of(kv) for kv in everything.kvs}
    return Observation(everything.header.revision, hashed.compact_revision, hashed.hash, keys)


@dataclass(slots=True)
class Model:
    """The store as verified after the last recovery, and what historic reads must return."""

    revision: int = FIRST_REVISION
    compact_revision: int = NEVER_COMPACTED
    keys: dict[bytes, KeyState] = field(default_factory=dict)
    #: (key, revision) -> what ``range(key, revision=revision)`` returns (None: no key).
    reads: dict[tuple[bytes, int], KeyState | None] = field(default_factory=dict)


@dataclass(slots=True)
class Tally:
    """Counts over a whole test, for its summary line."""

    cycles: int = 0
    acked_writes: int = 0
    acked_compactions: int = 0
    unanswered: int = 0
    unanswered_applied: int = 0
    historic_reads: int = 0

    def __str__(self) -> str:
        return (
            f"{self.cycles} kill/restart cycles: {self.acked_writes} acknowledged writes and "
            f"{self.acked_compactions} compactions checked; {self.unanswered} unanswered requests, "
            f"{self.unanswered_applied} of them applied; {self.historic_reads} historic reads"
        )


# --- the checker -----------------------------------------------------------------------------


@dataclass(slots=True)
class Verdict:
    model: Model  # the model to continue from: what was observed, with the history to re-read
    problems: list[str]
    applied_unanswered: int  # unanswered writes found to have happened


def check_recovery(before: Model, ops: Sequence[Op], seen: Observation) -> Verdict:
    """Check what a recovered server shows against the requests of the cycle before the kill."""
    problems: list[str] = []
    state = dict(before.keys)
    reads = dict(before.reads)
    created: list[int] = []  # revisions made by this cycle's writes
    applied_unanswered_deletes = 0
    compact_floor = before.compact_revision
    compact_unanswered: list[int] = []
    unanswered: dict[bytes, Op] = {}
    last_acked: dict[bytes, Op] = {}

    for op in ops:
        if op.kind == "compact":
            if op.outcome is Outcome.ACKED:
                compact_floor = max(compact_floor, op.compact_to)
            else:
                compact_unanswered.append(op.compact_to)
            continue
        if op.key in unanswered:
            problems.append(f"harness: {op} was sent after an unanswered request to its key")
        if op.outcome is Outcome.UNANSWERED:
            unanswered[op.key] = op
            continue
        last_acked[op.key] = op
        previous = state.get(op.key)
        if op.kind == "put":
            if op.revision <= op.floor:
                problems.append(f"{op}: not after revision {op.floor}, acknowledged before it")
            state[op.key] = after_put(previous, op.value, op.revision)
            reads[op.key, op.revision] = state[op.key]
            created.append(op.revision)
        else:
            expected_deleted = int(previous is not None)
            if op.deleted != expected_deleted:
                problems.append(
                    f"{op}: the key was {previous} before it, so it should have deleted "
                    f"{expected_deleted}"
                )
            if op.deleted:
                if op.revision <= op.floor:
                    problems.append(f"{op}: not after revision {op.floor}, acknowledged before")
                state.pop(op.key, None)
                reads[op.key, op.revision] = None
                created.append(op.revision)
            elif op.revision < op.floor:
                problems.append(f"{op}: answered at a revision below {op.floor}")

    applied: list[Op] = []
    for key, op in unanswered.items():
        acked, now = state.get(key), seen.keys.get(key)
        if now == acked:
            continue  # it did not happen (or a delete of a key that was not there)
        if op.kind == "put" and now is not None and now.value == op.value:
            whole = after_put(acked, op.value, now.mod_revision)
            if now != whole or now.mod_revision <= op.floor:
                problems.append(
                    f"{op}: it is there but not whole: read {now}, expected {whole} at a "
                    f"revision after {op.floor}"
                )
            state[key] = now
            reads[key, now.mod_revision] = now
            created.append(now.mod_revision)
            applied.append(op)
        elif op.kind == "delete" and now is None:
            state.pop(key)
            applied_unanswered_deletes += 1  # its revision is not visible; it is counted below
            applied.append(op)
        # Anything else is a difference the comparison below reports.

    for key in sorted(state.keys() | seen.keys.keys()):
        expected, actual = state.get(key), seen.keys.get(key)
        if expected == actual:
            continue
        writer = last_acked.get(key)
        because = f" (last acknowledged: {writer})" if writer else " (no acknowledged write)"
        if key in unanswered:
            because += f" (unanswered: {unanswered[key]})"
        if expected is None:
            problems.append(f"{key!r} is {actual}, but it should not exist{because}")
        elif actual is None:
            problems.append(f"LOST: {key!r} should be {expected} but is gone{because}")
        else:
            problems.append(f"LOST: {key!r} should be {expected} but is {actual}{because}")

    acked_revisions = [op.revision for op in ops if op.outcome is Outcome.ACKED]
    highest = max(acked_revisions, default=before.revision)
    if seen.revision < highest:
        problems.append(
            f"LOST: the store is at revision {seen.revision}, but revision {highest} was "
            "acknowledged"
        )
    if len(set(created)) != len(created):
        twice = sorted(r for r in set(created) if created.count(r) > 1)
        problems.append(f"revisions given to two writes: {twice}")
    outside = sorted(r for r in created if not before.revision < r <= seen.revision)
    if outside:
        problems.append(
            f"revisions {outside} are outside ({before.revision}, {seen.revision}], the "
            "revisions made since the last recovery"
        )
    accounted = before.revision + len(created) + applied_unanswered_deletes
    if seen.revision != accounted:
        problems.append(
            f"the store is at revision {seen.revision}, but the writes that were sent account "
            f"for revision {accounted}: {seen.revision - accounted:+d} revisions unexplained "
            "(a write nobody sent, or a lost one)"
        )

    allowed = {compact_floor, *(c for c in compact_unanswered if c > compact_floor)}
    if seen.compact_revision not in allowed:
        problems.append(
            f"compaction revision is {seen.compact_revision}, expected one of {sorted(allowed)} "
            f"(acknowledged compactions reach {compact_floor})"
        )

    kept = {
        (key, revision): expected
        for (key, revision), expected in reads.items()
        if revision >= seen.compact_revision
    }
    model = Model(seen.revision, seen.compact_revision, dict(seen.keys), kept)
    return Verdict(model, problems, len(applied))


async def check_history(endpoint: str, model: Model) -> list[str]:
    """Read every remembered write back at its revision; reads below compaction are refused."""
    problems: list[str] = []
    pending = sorted(model.reads.items(), key=lambda item: item[0][1])
    async with KVClient(endpoint, timeout=CALL_TIMEOUT, options=FRESH_CONNECTION) as client:

        async def read(key: bytes, revision: int, expected: KeyState | None) -> None:
            response = await client.range(key, revision=revision)
            actual = KeyState.of(response.kvs[0]) if response.kvs else None
            if actual != expected:
                problems.append(
                    f"LOST: range({key!r}, revision={revision}) gave {actual}, expected {expected}"
                )

        for start in range(0, len(pending), READ_CONCURRENCY):
            batch = pending[start : start + READ_CONCURRENCY]
            await asyncio.gather(*(read(k, r, expected) for (k, r), expected in batch))
        if model.compact_revision > FIRST_REVISION:
            below = model.compact_revision - 1
            try:
                await client.range(b"crash/", b"crash0", revision=below)
                problems.append(f"a read at {below}, below compaction, was not refused")
            except EtcdError as error:
                if (error.code, error.message) != (StatusCode.OUT_OF_RANGE, COMPACTED_MESSAGE):
                    problems.append(f"a read at {below}, below compaction, failed with {error}")
    return problems


# --- the write stream ------------------------------------------------------------------------


class WriteStream:
    """16 writers and a compactor against one server, which is killed after N acknowledgements.

    ``kill`` must kill the server at once (send SIGKILL); it is called exactly once, from the
    callback that counted the ``kill_after``-th acknowledged write (or when the stream ends
    early, so that a cycle always ends in a kill).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        seed: int,
        cycle: int,
        kill_after: int,
        kill: Callable[[], None],
        model: Model,
        value_size: int = 0,
    ) -> None:
        self.endpoint = endpoint
        self.seed = seed
        self.cycle = cycle
        self.kill_after = kill_after
        self.value_size = value_size
        self._kill = kill
        self.killed = False
        self.ops: list[Op] = []
        self.failures: list[Op] = []  # requests that failed while the server was alive
        self.acked_writes = 0
        self.top = model.revision  # the highest revision acknowledged so far
        self._compacted = model.compact_revision
        self._progress = asyncio.Event()

    async def run(self) -> list[Op]:
        try:
            async with asyncio.timeout(STREAM_DEADLINE):
                await asyncio.gather(
                    *(self._writer(index) for index in range(WRITERS)), self._compactor()
                )
        finally:
            self._kill_now()
        return self.ops

    def _kill_now(self) -> None:
        if not self.killed:
            self.killed = True
            self._kill()
            self._progress.set()

    def _acknowledged(self, op: Op, revision: int) -> None:
        op.outcome, op.revision = Outcome.ACKED, revision
        self.top = max(self.top, revision)
        if op.kind != "compact":
            self.acked_writes += 1
            if self.acked_writes >= self.kill_after:
                self._kill_now()
        self._progress.set()

    def _failed(self, op: Op, error: EtcdError) -> None:
        op.error = f"{error.code.name}: {error.message}"
        if not self.killed:
            self.failures.append(op)

    async def _writer(self, index: int) -> None:
        rng = random.Random(f"{self.seed}/{self.cycle}/writer/{index}")
        keys = [writer_key(index, slot) for slot in range(KEYS_PER_WRITER)]
        async with KVClient(self.endpoint, timeout=CALL_TIMEOUT, options=FRESH_CONNECTION) as c:
            for sequence in itertools.count():
                if self.killed:
                    return
                key = rng.choice(keys)
                if rng.random() < DELETE_SHARE:
                    op = Op("delete", key, floor=self.top)
                else:
                    value = put_value(self.seed, self.cycle, index, sequence, self.value_size)
                    op = Op("put", key, value, floor=self.top)
                self.ops.append(op)
                try:
                    if op.kind == "put":
                        revision = (await c.put(key, op.value)).header.revision
                    else:
                        response = await c.delete_range(key)
                        op.deleted, revision = response.deleted, response.header.revision
                except EtcdError as error:
                    self._failed(op, error)
                    return  # one unanswered request per writer at most
                self._acknowledged(op, revision)

    async def _compactor(self) -> None:
        rng = random.Random(f"{self.seed}/{self.cycle}/compactor")
        async with KVClient(self.endpoint, timeout=CALL_TIMEOUT, options=FRESH_CONNECTION) as c:
            while True:
                due = self.acked_writes + rng.randint(*COMPACT_EVERY)
                while not self.killed and self.acked_writes < due:
                    self._progress.clear()
                    await self._progress.wait()
                if self.killed:
                    return
                target = self._compaction_target(rng)
                if target is None:
                    continue
                op = Op("compact", compact_to=target, floor=self.top)
                self.ops.append(op)
                try:
                    revision = (await c.compact(target)).header.revision
                except EtcdError as error:
                    self._failed(op, error)
                    return
                self._compacted = target
                self._acknowledged(op, revision)

    def _compaction_target(self, rng: random.Random) -> int | None:
        """A revision above the last compaction, at most the highest acknowledged one."""
        if self.top <= self._compacted:
            return None
        tombstones = [
            op.revision
            for op in self.ops
            if op.kind == "delete" and op.deleted and self._compacted < op.revision <= self.top
        ]
        if tombstones and rng.random() < TOMBSTONE_COMPACTION_SHARE:
            return rng.choice(tombstones)  # compacting at a tombstone: etcd issue #17780
        return rng.randint(self._compacted + 1, self.top)


def choose_kill_after(rng: random.Random, between: tuple[int, int] | None = None) -> int:
    """How many acknowledged writes before the kill: by default up to 300, often within the
    first batch or two; else a number ``between`` the two given."""
    if between is not None:
        return rng.randint(*between)
    if rng.random() < 0.25:
        return rng.randint(1, WRITERS)
    return rng.randint(WRITERS + 1, 300)


def describe(ops: Iterable[Op], limit: int = 40) -> str:
    """The unanswered requests and the last acknowledged ones, for a failure message."""
    ops = list(ops)
    unanswered = [op for op in ops if op.outcome is Outcome.UNANSWERED]
    acked = [op for op in ops if op.outcome is Outcome.ACKED]
    lines = [f"{len(acked)} acknowledged, {len(unanswered)} unanswered requests; unanswered:"]
    lines += [f"  {op}" for op in unanswered[:limit]]
    lines.append("last acknowledged:")
    lines += [f"  {op}" for op in sorted(acked, key=lambda op: op.revision)[-limit:]]
    return "\n".join(lines)


# --- the cycles ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What a crash test varies besides the seed."""

    cycles: int
    value_size: int = 0  # put values padded to this many bytes
    kill_after: tuple[int, int] | None = None  # acknowledged writes before a kill; see below


async def crash_cycles(server: Server, *, seed: int, plan: Plan) -> Tally:
    """Start ``server`` on a fresh data dir, then kill, restart and check it: ``plan.cycles``."""
    rng = random.Random(seed)
    tally = Tally()
    server.start()
    try:
        first = await observe(server.endpoint)
        assert (first.revision, first.compact_revision, dict(first.keys)) == (
            FIRST_REVISION,
            NEVER_COMPACTED,
            {},
        ), f"seed {seed}: the data dir was not fresh: {first}"
        model = Model()
        for cycle in range(plan.cycles):
            model = await one_cycle(
                server, model, seed=seed, cycle=cycle, rng=rng, tally=tally, plan=plan
            )
    finally:
        server.kill()
    return tally


def interrupt_recovery(server: Server) -> None:
    """Start the server and SIGKILL it as soon as it begins to recover its data dir.

    The moment is a condition, not a delay: the log line kv writes just before it opens the
    data dir. The kill then lands somewhere in recovery (repairing the log, replaying it,
    committing the replay) or just after it.
    """
    offset = server.log_path.stat().st_size
    server.launch()
    process = server.process
    assert process is not None
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while RECOVERY_BEGINS not in server.log_path.read_bytes()[offset:]:
        if process.poll() is not None:
            raise AssertionError(f"kv exited while recovering:\n{server.log_tail(40)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"kv did not begin recovery:\n{server.log_tail(40)}")
        time.sleep(0.001)  # polling interval only: the kill waits for the log line
    server.kill()


async def one_cycle(
    server: Server,
    model: Model,
    *,
    seed: int,
    cycle: int,
    rng: random.Random,
    tally: Tally,
    plan: Plan,
) -> Model:
    """Write, SIGKILL at the seed's moment, restart, check; kill and restart again, compare."""
    where = f"seed {seed} ({SEED_ENV}={seed} replays the plan), cycle {cycle}"
    kill_after = choose_kill_after(rng, plan.kill_after)
    process = server.process
    assert process is not None
    stream = WriteStream(
        server.endpoint,
        seed=seed,
        cycle=cycle,
        kill_after=kill_after,
        kill=process.kill,
        model=model,
        value_size=plan.value_size,
    )
    try:
        ops = await stream.run()
    except TimeoutError:
        raise AssertionError(
            f"{where}: the write stream did not end within {STREAM_DEADLINE}s "
            f"(kill after {kill_after} acknowledged writes; {stream.acked_writes} were)\n"
            f"{server.log_tail(40)}"
        ) from None
    server.kill()  # reap it
    assert not stream.failures, (
        f"{where}: requests failed while the server was up:\n"
        + "\n".join(f"  {op}" for op in stream.failures)
        + f"\n{server.log_tail(40)}"
    )
    for _ in range(rng.choice(RECOVERY_KILLS)):
        interrupt_recovery(server)
    server.start()
    seen = await observe(server.endpoint)
    verdict = check_recovery(model, ops, seen)
    problems = verdict.problems or await check_history(server.endpoint, verdict.model)
    assert not problems, (
        f"{where}: killed after {kill_after} acknowledged writes; after the restart:\n"
        + "\n".join(f"  {problem}" for problem in problems[:40])
        + f"\n{describe(ops)}\n{server.log_tail(40)}"
    )
    # Recovering a second time, with nothing written in between, must change nothing.
    server.kill()
    server.start()
    again = await observe(server.endpoint)
    assert again == seen, (
        f"{where}: a second restart changed the store:\n  first:  {seen}\n  second: {again}\n"
        f"{server.log_tail(40)}"
    )
    tally.cycles += 1
    tally.acked_writes += sum(op.outcome is Outcome.ACKED and op.kind != "compact" for op in ops)
    tally.acked_compactions += sum(
        op.outcome is Outcome.ACKED and op.kind == "compact" for op in ops
    )
    tally.unanswered += sum(op.outcome is Outcome.UNANSWERED for op in ops)
    tally.unanswered_applied += verdict.applied_unanswered
    tally.historic_reads += len(verdict.model.reads)
    return verdict.model
