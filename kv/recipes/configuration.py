"""Dynamic configuration: follow a prefix of keys and apply every change in revision order,
across disconnects, without missing or repeating one (chapter 9).

A service keeps its settings under a prefix (``/config/web/``: one key per setting) and every
process of it wants the same settings, changed while it runs. `ConfigFollower` is the recipe,
in three moves, each resting on a guarantee of the earlier chapters:

1. **Load** the prefix with one Range. The answer is the state at one revision (chapter 1:
   a read sees one revision), ``header.revision``; call it R.
2. **Watch** the prefix from R + 1. A watch from a revision replays the history after it in
   revision order before it sends new writes (chapter 8), so no change between the load and
   the watch can fall in the gap, and each change arrives once. The changes of one revision
   (a txn that sets two keys, chapter 6) arrive in one response: they are applied together,
   so no process ever runs with half of a change.
3. **Resume** after a disconnect (the member died, the network failed) on another member, from
   the revision of the last *event* applied + 1. Not from a response header's revision + 1:
   a member's header may be ahead of the events it has sent (etcd PR #15275), and resuming
   past them would miss changes. Every member applies the same log, so any member can
   replay from that revision.

**The failure case: compaction.** If the history after the last applied revision was
compacted while the follower was away (chapter 8: the watch is cancelled with
``compact_revision``), the changes in between are gone for good. The follower then loads the
prefix again and applies the difference between what it had and what is there now, as
changes at the new revision: it ends in the right state, but the intermediate values are
skipped, and it says so (`Change.resynced`). Keep ``--auto-compaction-retention`` longer than
a follower may be away (chapter 10).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from kv.api.mvccpb import kv_pb2
from kv.client import KVClient, prefix_end
from kv.server.errors import EtcdError

log = logging.getLogger(__name__)

#: How long one member may take to answer a load before the follower tries the next one.
CALL_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Change:
    """One setting changed: its new value (None: deleted), at the revision it changed in."""

    key: bytes
    value: bytes | None
    revision: int
    #: True for a change found by reloading after a compaction, not seen as it happened.
    resynced: bool = False


Apply = Callable[[list[Change]], Awaitable[None] | None]


# --8<-- [start:follower]
@dataclass(slots=True)
class ConfigFollower:
    """The settings under ``prefix``, kept current from any of ``endpoints``.

    ``apply`` is called with the changes of each revision, in revision order, once each.
    """

    endpoints: Sequence[str]
    prefix: bytes
    apply: Apply
    #: The settings as last applied.
    settings: dict[bytes, bytes] = field(default_factory=dict)
    #: The revision ``settings`` reflect: every change up to it has been applied.
    revision: int = 0
    #: Reconnections so far, and reloads forced by a compaction.
    resumes: int = 0
    resyncs: int = 0
    _next_endpoint: int = 0

    async def follow(self) -> None:
        """Load the settings, then apply changes until cancelled (going member to member)."""
        while True:
            endpoint = self.endpoints[self._next_endpoint % len(self.endpoints)]
            self._next_endpoint += 1
            try:
                async with KVClient(endpoint, timeout=CALL_TIMEOUT) as client:
                    if self.revision == 0:
                        await self._load(client, resynced=False)
                    while await self._watch(client):
                        pass  # reloaded after a compaction: watch again, on the same member
            except EtcdError as error:  # the member is gone, or lost its leader
                log.info("config: %s failed (%s)", endpoint, error)
            log.info("config: resuming from revision %d", self.revision + 1)
            self.resumes += 1

    async def _load(self, client: KVClient, *, resynced: bool) -> None:
        """Read the prefix at one revision; apply how it differs from ``settings``."""
        response = await client.range(self.prefix, prefix_end(self.prefix))
        now = {kv.key: kv.value for kv in response.kvs}
        changes = [
            Change(key, now.get(key), response.header.revision, resynced)
            for key in sorted(now.keys() | self.settings.keys())
            if now.get(key) != self.settings.get(key)
        ]
        await self._apply(changes, response.header.revision)

    async def _watch(self, client: KVClient) -> bool:
        """Apply the prefix's changes after ``revision`` until the stream ends; True if it
        ended because the history was compacted (and the settings were reloaded)."""
        # require_leader: a member cut off from its leader ends the stream (it would
        # otherwise stay silent), so the follower moves on to one that hears the writes.
        watch = client.watch(
            self.prefix,
            prefix_end(self.prefix),
            start_revision=self.revision + 1,
            require_leader=True,
        )
        async for response in watch:
            if response.compact_revision:
                self.resyncs += 1
                await self._load(client, resynced=True)
                return True
            # One response may hold several revisions (never part of one): apply each whole.
            for revision, events in groupby(response.events, key=lambda e: e.kv.mod_revision):
                await self._apply([_change(event) for event in events], revision)
        return False

    async def _apply(self, changes: list[Change], revision: int) -> None:
        if changes:
            applied = self.apply(changes)
            if applied is not None:
                await applied
        for change in changes:
            if change.value is None:
                self.settings.pop(change.key, None)
            else:
                self.settings[change.key] = change.value
        self.revision = revision


# --8<-- [end:follower]


def _change(event: kv_pb2.Event) -> Change:
    deleted = event.type == kv_pb2.Event.DELETE
    return Change(event.kv.key, None if deleted else event.kv.value, event.kv.mod_revision)
